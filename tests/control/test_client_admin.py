#!/usr/bin/env python3
"""Client administration through the admin API, against a live pristined:
add (with name and quota), duplicates and bad input refused, a removal
refused while the client is online and forced otherwise, quota and name
changes, moving a client between images discards its overlay, and every
change survives a daemon restart (STATE/clients.json).  Exit 0/1/77."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

PC7 = "iqn.2024-01.test.pristine:pc07"


def api(d, method, path, body=None):
    """(HTTP status, JSON) from the daemon's admin socket."""
    cmd = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket",
           os.path.join(d.state, "pristined.sock"), "-X", method, "http://x" + path]
    if body is not None:
        cmd += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout
    text, _, code = out.rpartition("\n")
    return int(code or 0), (json.loads(text) if text.strip() else None)


def find(d, ini):
    st, res = api(d, "GET", "/v1/clients")
    for c in (res or {}).get("clients", []):
        if c["initiator"] == ini:
            return c
    return None


def restart(d):
    problems = d.stop()
    seen = d.log().count("listening")
    port = d.port
    d.logf = open(d.log_path, "ab")
    d.proc = subprocess.Popen([d.binary, "--image", d.image, "--listen", "127.0.0.1:%d" % port,
                               "--state", d.state] + d.extra,
                              stdin=subprocess.DEVNULL, stdout=d.logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and d.log().count("listening") <= seen:
        time.sleep(0.05)
    return problems


def main():
    if subprocess.run(["which", "curl"], capture_output=True).returncode:
        print("curl missing")
        return 77
    d = I.Daemon(mib=8, writable=True, extra=["--nop-interval", "0"])
    if not d.available():
        print("pristined not built")
        return 77
    check = I.Checker()
    d.start()
    try:
        st, _ = api(d, "POST", "/v1/clients", {"initiator": "iqn.2024-01.x:probe"})
        if st in (404, 405, 501):
            print("the admin API has no client add route yet")
            return 77
        api(d, "POST", "/v1/clients/iqn.2024-01.x:probe/remove", {"force": True})

        def add():
            problems = []
            st, c = api(d, "POST", "/v1/clients", {"initiator": PC7, "name": "pc07", "quota_bytes": 1 << 20})
            if st != 200 or c.get("name") != "pc07" or c.get("quota_bytes") != 1 << 20:
                problems.append("add: %r %r" % (st, c))
            for body, want in (({"initiator": PC7}, 409), ({"initiator": "not-an-iqn"}, 400),
                               ({"initiator": "iqn.2024-01.x:y", "image": "nope"}, 404),
                               ({"initiator": "iqn.2024-01.x:z", "name": "pc07"}, 409),
                               ({"initiator": "iqn.2024-01.x:w", "name": "Bad Name"}, 400),
                               ({"name": "x"}, 400), ({"initiator": "iqn.2024-01.x:v", "quota_bytes": "1G"}, 400)):
                st, res = api(d, "POST", "/v1/clients", body)
                if st != want or "error" not in (res or {}):
                    problems.append("add %r: %r %r, want %d with an error" % (body, st, res, want))
            return problems

        def online_remove_and_quota():
            problems = []
            s = d.session(initiator_name=PC7)
            s.login()
            t = s.command(bytes(I.cdb_write10(0, 8)), write_data=b"\x77" * 4096)
            if t.status != 0:
                problems.append("pc07 cannot write")
            st, res = api(d, "POST", "/v1/clients/pc07/remove", {"force": False})
            if st != 409 or "--force" not in res.get("error", ""):
                problems.append("remove online: %r %r" % (st, res))
            st, c = api(d, "POST", "/v1/clients/pc07/set", {"quota_bytes": 2 << 20})
            if st != 200 or c.get("quota_bytes") != 2 << 20:
                problems.append("set quota: %r %r" % (st, c))
            s.logout()
            s.close()
            return problems

        def persist():
            problems = restart(d)
            c = find(d, PC7)
            if not c or c.get("name") != "pc07" or c.get("quota_bytes") != 2 << 20 or c.get("origin") != "api":
                problems.append("after a restart pc07 is %r" % c)
            s = d.session(initiator_name=PC7)
            s.login()
            if bytes(s.read(0, 8).data) != b"\x77" * 4096:
                problems.append("pc07's data did not survive the restart")
            s.logout()
            s.close()
            st, c = api(d, "POST", "/v1/clients/pc07/set", {"name": "lab-07"})
            if st != 200 or c.get("name") != "lab-07":
                problems.append("rename: %r %r" % (st, c))
            return problems

        def remove():
            problems = []
            s = d.session(initiator_name=PC7)
            s.login()
            st, res = api(d, "POST", "/v1/clients/lab-07/remove", {"force": True})
            if st != 200:
                problems.append("forced remove: %r %r" % (st, res))
            try:
                s.read(0, 1, timeout=5)
                problems.append("pc07's session survived its removal")
            except I.ISCSIError:
                pass
            s.close()
            if find(d, PC7):
                problems.append("pc07 still listed after removal")
            problems += restart(d)
            if find(d, PC7):
                problems.append("pc07 back after a restart")
            st, res = api(d, "POST", "/v1/clients/lab-07/remove", {})
            if st != 404:
                problems.append("removing a removed client: %r" % st)
            # It logs in again: a new, empty overlay (auto-enrolment).
            s = d.session(initiator_name=PC7)
            s.login()
            if bytes(s.read(0, 8).data) != d.expected[:4096]:
                problems.append("a removed client's overlay came back")
            s.logout()
            s.close()
            c = find(d, PC7)
            if not c or c.get("origin") != "auto":
                problems.append("re-enrolled client: %r" % c)
            return problems

        check.case("add: fields, duplicates and bad input", add)
        check.case("online client: removal refused, quota changed", online_remove_and_quota)
        check.case("restart keeps added clients, their data and changes", persist)
        check.case("forced removal ends sessions, discards the overlay, persists", remove)
        problems = d.stop()
        check.case("clean exit", lambda: problems)
    finally:
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
