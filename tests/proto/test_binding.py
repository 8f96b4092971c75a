#!/usr/bin/env python3
"""Client binding: a client's initiator name works only from its addresses.

pristined runs with a configuration file: a client bound to 127.0.0.2, a
client bound to the network 127.0.0.0/30, a CHAP client bound to
127.0.0.2, an unbound client; enroll = auto.  Our initiator picks its
source address on loopback (127.0.0.x).  Checked:
- a bound client logs in (and reads) from its address / network;
- the same initiator name from another address is refused with 0x0201
  before anything is attached, for normal and discovery sessions, and
  the refusal is logged with the address and the word "spoofing";
- a CHAP client from a wrong address is refused even with the right
  secret (the address check comes first, the secret is never asked);
- libiscsi (iscsi-inq, always from 127.0.0.1) is refused the same way;
- pristinectl client add/set --ip binds API clients at runtime (a list,
  a network, '' = anywhere), bad rules are refused with a clear message
  and change nothing, the rules survive a restart (clients.json);
- unknown initiators still follow the enroll policy from any address.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CTL = os.path.join(TOP, "build", "pristinectl")
BOUND = "iqn.2024-01.test.bind:bound"
NET = "iqn.2024-01.test.bind:net"
CHAPC = "iqn.2024-01.test.bind:chap"
FREE = "iqn.2024-01.test.bind:free"
APIC = "iqn.2024-01.test.bind:api"
TARGET = I.ConfDaemon.TARGET
SECRET = "bound-chap-secret-1"


BODY = """[defaults]
enroll = auto

[client bound]
initiator = %s
ip = 127.0.0.2

[client net]
initiator = %s
ip = 10.1.0.0/16, 127.0.0.0/30

[client chap]
initiator = %s
ip = 127.0.0.2
chap-user = chap
chap-secret = %s
""" % (BOUND, NET, CHAPC, SECRET)


def ctl(d, *args):
    r = subprocess.run([CTL, "--socket", d.sock] + list(args), capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


def main():
    if shutil.which("iscsi-inq") is None:
        print("iscsi-inq (libiscsi-bin) is missing: make deps")
        return 77
    d = I.ConfDaemon(body=BODY, server_extra="nop-interval = 0", mib=4, writable=True)
    if not d.available() or not os.access(CTL, os.X_OK):
        print("build/asan/pristined or build/pristinectl is not built")
        return 77
    check = I.Checker()
    d.start()

    def logins(name):
        return len(re.findall(r"session 0x[0-9a-f]+ logged in: initiator %s " % re.escape(name),
                              d.log()))

    def ok(name, source, chap=None, discovery=False):
        s = d.session(initiator_name=name, source=source)
        problems = []
        try:
            if discovery:
                s.login(session_type="Discovery")
                if not any(v == TARGET for k, v in s.send_targets()):
                    problems.append("SendTargets from %s does not list %s" % (source, TARGET))
            else:
                s.login(chap=chap)
                t = s.read(0, 1)
                if bytes(t.data) != d.expected[:512]:
                    problems.append("wrong data for %s from %s" % (name, source))
            s.logout()
        except I.ISCSIError as e:
            problems.append("%s from %s: %s" % (name, source, e))
        finally:
            s.close()
        return problems

    def refused(name, source, chap=None, discovery=False):
        before = logins(name)
        s = d.session(initiator_name=name, source=source)
        problems = []
        try:
            s.login(chap=chap, session_type="Discovery" if discovery else "Normal")
            problems.append("%s from %s logged in" % (name, source))
        except I.LoginFailed as e:
            if (e.status_class, e.status_detail) != (2, 1):
                problems.append("refused with 0x%02x%02x, expected 0x0201" %
                                (e.status_class, e.status_detail))
        except I.ISCSIError as e:
            problems.append("%s from %s: not a login refusal: %s" % (name, source, e))
        finally:
            s.close()
        time.sleep(0.1)
        if logins(name) != before:
            problems.append("a session of %s was logged in" % name)
        pat = r"%s:\d+: login refused \(0x0201\): initiator name of client \S+ used from an " \
              r"address it is not bound to .*spoofing.*\[initiator %s\]" % (re.escape(source),
                                                                          re.escape(name))
        if not re.search(pat, d.log()):
            problems.append("no refusal line naming %s and %s in the log" % (source, name))
        return problems

    check.case("bound client from its address", ok, BOUND, "127.0.0.2")
    check.case("bound client from another address", refused, BOUND, "127.0.0.3")
    check.case("bound client, discovery from its address", ok, BOUND, "127.0.0.2", discovery=True)
    check.case("bound client, discovery from another address", refused, BOUND, "127.0.0.1",
               discovery=True)
    check.case("network rule: 127.0.0.1 inside 127.0.0.0/30", ok, NET, "127.0.0.1")
    check.case("network rule: 127.0.0.3 inside 127.0.0.0/30", ok, NET, "127.0.0.3")
    check.case("network rule: 127.0.0.4 outside", refused, NET, "127.0.0.4")
    chap = {"user": "chap", "secret": SECRET}
    check.case("CHAP client, right secret, its address", ok, CHAPC, "127.0.0.2", chap=chap)

    def chap_elsewhere():
        p = refused(CHAPC, "127.0.0.9", chap=chap)
        tail = d.log()
        if re.search(r"127\.0\.0\.9:\d+: .*authentication failed for %s" % re.escape(CHAPC), tail):
            p.append("CHAP was negotiated before the address check")
        return p
    check.case("CHAP client, right secret, wrong address", chap_elsewhere)
    check.case("unbound (auto-enrolled) initiator from anywhere", ok, FREE, "127.0.0.7")
    check.case("unbound initiator from a second address", ok, FREE, "127.0.0.8")

    def libiscsi_refused():
        r = subprocess.run(["iscsi-inq", "-i", BOUND, "iscsi://127.0.0.1:%d/%s/0" % (d.port, TARGET)],
                           capture_output=True, text=True, timeout=30)
        if r.returncode == 0:
            return ["iscsi-inq logged in as %s from 127.0.0.1" % BOUND]
        if not re.search(r"127\.0\.0\.1:\d+: login refused \(0x0201\).*\[initiator %s\]" %
                         re.escape(BOUND), d.log()):
            return ["libiscsi's refused login is not in the log"]
        return []
    check.case("libiscsi with a spoofed name", libiscsi_refused)

    # ---- API clients ----
    def api_add():
        p = []
        rc, out = ctl(d, "client", "add", APIC, "--ip", "127.0.0.4, 10.9.0.0/16")
        if rc != 0:
            return ["client add --ip failed (%d): %s" % (rc, out)]
        rc, out = ctl(d, "--json", "client", "show", APIC)
        if rc != 0 or json.loads(out).get("ip") != ["127.0.0.4", "10.9.0.0/16"]:
            p.append("client show: ip is not the canonical list: %s" % out)
        p += ok(APIC, "127.0.0.4")
        p += refused(APIC, "127.0.0.1")
        return p
    check.case("client add --ip", api_add)

    def bad_rules():
        p = []
        for bad, why in (("10.0.0.5/24", "address bits set beyond the prefix length"),
                         ("10.0.0.0/33", "prefix length out of range"),
                         ("not-an-address", "not an IPv4 or IPv6 address"),
                         ("127.0.0.1,,127.0.0.2", "empty address"),
                         ("127.0.0.1, 127.0.0.1", "listed twice")):
            rc, out = ctl(d, "client", "set", APIC, "--ip", bad)
            if rc == 0 or why not in out:
                p.append("--ip %r: exit %d, %r (expected a refusal saying %r)" % (bad, rc, out, why))
        rc, out = ctl(d, "--json", "client", "show", APIC)
        if json.loads(out).get("ip") != ["127.0.0.4", "10.9.0.0/16"]:
            p.append("a refused --ip changed the rules: %s" % out)
        return p
    check.case("bad --ip rules refused, nothing changed", bad_rules)

    def api_set():
        p = []
        rc, out = ctl(d, "client", "set", APIC, "--ip", "127.0.0.1")
        if rc != 0 or "ip 127.0.0.1" not in out:
            return ["client set --ip: %d %s" % (rc, out)]
        p += ok(APIC, "127.0.0.1")
        p += refused(APIC, "127.0.0.4")
        return p
    check.case("client set --ip moves the binding", api_set)

    def config_client_set():
        rc, out = ctl(d, "client", "set", "bound", "--ip", "")
        if rc == 0 or "configuration file" not in out:
            return ["client set --ip of a configuration client: %d %s" % (rc, out)]
        return []
    check.case("a configuration client's binding is changed in the file only", config_client_set)

    def restart_keeps():
        p = d.stop()
        if p:
            return p
        d.start(fresh=False)
        p = ok(APIC, "127.0.0.1")
        p += refused(APIC, "127.0.0.4")
        p += refused(BOUND, "127.0.0.5")
        return p
    check.case("rules survive a restart", restart_keeps)

    def clear():
        rc, out = ctl(d, "client", "set", APIC, "--ip", "")
        if rc != 0 or "ip any" not in out:
            return ["client set --ip '': %d %s" % (rc, out)]
        return ok(APIC, "127.0.0.6")
    check.case("--ip '' binds to anywhere again", clear)

    return check.finish_with(d)


if __name__ == "__main__":
    sys.exit(main())
