#!/usr/bin/env python3
"""Issue 5, "what it must show" 3: the boot endpoint under bad input and
in the cases where a reset must NOT happen - without QEMU, over HTTP
(http.client and raw sockets) against a live build/asan/pristined.

Daemon A (command line, enroll auto, iSCSI on 127.0.0.1, boot endpoint on
127.0.0.1; "another address" is a session bound to 127.0.0.2):
  - the first step: a request without identification chains back with
    iPXE's variables, to the Host it was reached at (or the socket address
    without a Host header); HEAD works; unknown keys alone = first step
  - missing identification (empty mac/uuid/ip, only uuid, only ip):
    a message script saying why, nothing enrolled
  - hostile parameters (bad MAC forms, ${...}, very long values, NUL/CR/LF
    percent-encoded, raw '${', 17 parameters), bad Host headers, a huge URL:
    HTTP 4xx with a clear message that does not echo the input, the daemon
    alive, nothing enrolled; exactly 16 parameters are still accepted
  - POST/PUT/DELETE/OPTIONS -> 405, a body -> 413, other paths -> 404
  - a registered persistent client (MAC in any of iPXE's forms): a sanboot
    script with its initiator, the portal HOST:PORT and the image target;
    its data is never reset (not even with sessions held from here and
    from another address)
  - enroll auto: an unknown MAC becomes pc-<hex> with its MAC, once
  - a placeholder SMBIOS UUID (all zeros, what every QEMU and many cloned
    PCs report) must not make one PC another: a second MAC with the same
    UUID is enrolled as itself, not answered as the first PC; a UUID an
    admin set identifies its client; a reported UUID is never learned
  - reset-on-boot client ONLINE from 127.0.0.2, boot request from
    127.0.0.1: a message script, its session alive, its data kept; once
    offline, a boot request resets it (so the check could fail)
  - reset-on-boot client with a stale session from 127.0.0.1 (the same
    address): the session is ended, the overlay reset, a sanboot script
  - an image's maintenance client (pristinectl image edit IMG --client C,
    C reset-on-boot): its script sanboots the image target; it is not reset;
    after image discard its own overlay still holds its data
  - scheduled policy: --policy scheduled without --reset-at and bad
    --reset-at/--policy values are refused; the API shows a client's
    reset_at; the scheduler is driven for real: reset_at = the next minute,
    a bounded wait (<= 90 s): the offline client is reset, the online one
    (session held from 127.0.0.1) is not but becomes reset_due, and its
    next boot request ends the stale session and resets it
Daemon B (a configuration file with [defaults] enroll = deny):
  - an unknown PC: 200 and a message script naming its MAC (and UUID),
    nothing enrolled; a [client] with mac = gets its sanboot script
Both daemons stop cleanly on SIGTERM with no sanitizer report.
Exit 0 (pass), 1 (fail), 77 (skip)."""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import iscsi_initiator as I  # noqa: E402

TOP = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
PRISTINED = os.environ.get("PRISTINED", os.path.join(BUILD, "asan", "pristined"))
CTL = os.environ.get("PRISTINECTL", os.path.join(BUILD, "pristinectl"))
P = "iqn.2024-01.test.pristine"
MIB = 16
LBA = 100                      # where clients write their data
SCHED_WAIT = 90


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Daemon:
    """pristined with a boot endpoint; args are given whole."""

    def __init__(self, tmp, name, args):
        self.tmp, self.name, self.args = tmp, name, args
        self.log_path = os.path.join(tmp, name + ".log")
        self.proc = None

    def start(self, timeout=20):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PRISTINED] + self.args, stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "boot endpoint on" in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("pristined exited at start:\n" + self.log())
            time.sleep(0.05)
        raise RuntimeError("no boot endpoint within %d s:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if self.proc is None:
            return []
        problems = I.stop_process(self.proc, self.log, timeout=20)
        self.logf.close()
        self.proc = None
        return problems

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("x", timeout=30)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.path)


class Lab:
    """One daemon and what the cases need to talk to it."""

    def __init__(self, d, state, port, bport, target, image):
        self.d, self.state, self.port, self.bport = d, state, port, bport
        self.target, self.image = target, image

    # ---- admin API
    def api(self, method, path, body=None):
        c = UnixHTTP(os.path.join(self.state, "pristined.sock"))
        data = json.dumps(body).encode() if body is not None else None
        c.request(method, path, body=data,
                  headers={"Content-Type": "application/json"} if data else {})
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        return r.status, (json.loads(text) if text.strip() else None)

    def clients(self):
        st, res = self.api("GET", "/v1/clients")
        assert st == 200, (st, res)
        return {c["initiator"]: c for c in res["clients"]}

    def client(self, ini):
        return self.clients().get(ini)

    def add(self, ini, mac, policy, **kw):
        body = {"initiator": ini, "policy": policy}
        if mac:
            body["mac"] = mac
        body.update(kw)
        st, res = self.api("POST", "/v1/clients", body)
        if st not in (200, 201):
            raise RuntimeError("adding %s: %s %s" % (ini, st, res))
        return res

    def ctl(self, *args):
        return subprocess.run([CTL, "--state", self.state] + list(args), capture_output=True,
                              text=True, timeout=60)

    # ---- the boot endpoint
    def get(self, query="", method="GET", host=None, path="/boot.ipxe", body=None):
        """(status, body) of one request from 127.0.0.1 through http.client."""
        c = http.client.HTTPConnection("127.0.0.1", self.bport, timeout=20)
        headers = {"Host": host or "127.0.0.1:%d" % self.bport, "Connection": "close"}
        c.request(method, path + (("?" + query) if query else ""), body=body, headers=headers)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        c.close()
        return r.status, text

    def raw(self, request, src="127.0.0.1"):
        """(status, body) of a raw HTTP request (bytes); status 0 if the
        server closed without an answer."""
        s = socket.create_connection(("127.0.0.1", self.bport), timeout=20, source_address=(src, 0))
        try:
            s.sendall(request)
        except OSError:
            pass
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        s.close()
        m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
        return (int(m.group(1)) if m else 0), data.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")

    def boot(self, mac="", uuid="", ip=""):
        return self.get("mac=%s&uuid=%s&ip=%s" % (mac, uuid, ip))

    # ---- iSCSI
    def session(self, ini, src="127.0.0.1"):
        real = socket.create_connection

        def bound(addr, timeout=None, source_address=None):
            return real(addr, timeout, (src, 0))
        socket.create_connection = bound
        try:
            s = I.Session("127.0.0.1", self.port, ini, target_name=self.target, timeout=20)
            s.login()
            s.ready()
            return s
        finally:
            socket.create_connection = real

    def write(self, ini, data, lba=LBA):
        s = self.session(ini)
        s.write(lba, data)
        s.logout()

    def read(self, ini, lba=LBA, s=None):
        own = s is None
        if own:
            s = self.session(ini)
        t = s.read(lba, 1)
        if own:
            s.logout()
        return bytes(t.data)

    def golden(self, lba=LBA):
        return self.image[lba * 512:(lba + 1) * 512]

    def log_count(self, text):
        return self.d.log().count(text)


def pattern(tag):
    return (tag.encode() * 512)[:512]


def problems_of(checks):
    return [msg for ok, msg in checks if not ok]


def is_message(body):
    return body.startswith("#!ipxe") and "echo pristine:" in body and "sanboot" not in body


def is_sanboot(body, lab, ini, host="127.0.0.1"):
    return ("set initiator-iqn %s\n" % ini in body and
            "sanboot iscsi:%s::%d:0:%s " % (host, lab.port, lab.target) in body)


def wait_until(cond, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.2)
    return cond()


def ended(s):
    """True when the target has ended the held session s."""
    try:
        s.nop(timeout=5)
        return False
    except (I.ISCSIError, OSError):
        return True


# ====================================================================== daemon A cases

def c_first_step(lab):
    out = []
    st, body = lab.get()
    chain = "chain http://127.0.0.1:%d/boot.ipxe?mac=${mac:hexhyp}&uuid=${uuid}&ip=${ip}" % lab.bport
    out.append((st == 200 and body.startswith("#!ipxe\n") and chain in body,
                "first step: %s %r" % (st, body)))
    st, body = lab.get(host="boot.lab.example:8180")
    out.append((st == 200 and "chain http://boot.lab.example:8180/boot.ipxe?mac=${mac:hexhyp}" in body,
                "first step does not chain to its Host header: %s %r" % (st, body)))
    st, body = lab.raw(b"GET /boot.ipxe HTTP/1.0\r\n\r\n")
    out.append((st == 200 and chain in body, "HTTP/1.0 without Host: %s %r" % (st, body)))
    st, body = lab.get("foo=bar&x=")
    out.append((st == 200 and chain in body, "only unknown keys: not the first step: %s %r" % (st, body)))
    st, body = lab.get(method="HEAD")
    out.append((st == 200 and body == "", "HEAD: %s %r" % (st, body)))
    out.append((lab.clients() == {} , "a first step enrolled someone: %s" % list(lab.clients())))
    return problems_of(out)


def c_missing(lab):
    out = []
    for q, why in (("mac=&uuid=&ip=", "no MAC"), ("mac=&uuid=12345678-9abc-def0-1234-56789abcdef0&ip=", "no MAC"),
                   ("ip=10.0.2.15", "no MAC"), ("uuid=", "no MAC")):
        st, body = lab.get(q)
        out.append((st == 200 and is_message(body) and "sent no MAC address" in body,
                    "?%s: expected a message script (%s), got %s %r" % (q, why, st, body)))
    out.append((lab.clients() == {}, "a request without MAC enrolled someone: %s" % list(lab.clients())))
    out.append((lab.d.alive(), "pristined died"))
    return problems_of(out)


LONG = "a" * 5000
HOSTILE = [
    # (query, the message expected in the 400 body)
    ("mac=52:54:00:00:00:1", "mac: not a MAC address"),
    ("mac=52:54:00:00:00:0g", "mac: not a MAC address"),
    ("mac=5254000000011", "mac: not a MAC address"),
    ("mac=52:54:00:00:00:01:", "mac: not a MAC address"),
    ("mac=:52:54:00:00:00:01", "mac: not a MAC address"),
    ("mac=52:54-00:00:00:01", "mac: not a MAC address"),
    ("mac=5254-0000-0001", "mac: not a MAC address"),
    ("mac=52::54:00:00:00:01", "mac: not a MAC address"),
    ("mac=52%2054%2000%2000%2000%2001", "mac: not a MAC address"),
    ("mac=52:54:00:00:00:01%00", "NUL byte in a parameter"),
    ("mac=52:54:00:00:00:01%0d%0aset%20initiator-iqn%20evil", "mac: not a MAC address"),
    ("mac=%24%7Bmac%3Ahexhyp%7D", "mac: not a MAC address"),
    ("mac=${mac:hexhyp}", "mac: not a MAC address"),
    ("mac=" + LONG, "mac: not a MAC address"),
    ("mac=" + "52:54:00:00:00:01" * 200, "mac: not a MAC address"),
    ("uuid=${uuid}", "uuid: not a UUID"),
    ("uuid=%24%7Buuid%7D", "uuid: not a UUID"),
    ("uuid=12345678-9abc-def0-1234-56789abcdef0%0a", "uuid: not a UUID"),
    ("uuid=12345678-9abc-def0-1234-56789abcdef%00", "NUL byte in a parameter"),
    ("uuid=123456789-abc-def0-1234-56789abcdef0", "uuid: not a UUID"),
    ("uuid=" + LONG, "uuid: not a UUID"),
    ("ip=${ip}", "ip: not a numeric address"),
    ("ip=10.0.2.15%0d%0a", "ip: not a numeric address"),
    ("ip=10.0.2.999", "ip: not a numeric address"),
    ("ip=10.0.2.15;reboot", "ip: not a numeric address"),
    ("ip=%3A%3A1%00", "NUL byte in a parameter"),
    ("ip=" + LONG, "ip: not a numeric address"),
    ("mac=02:00:00:00:00:01&" + "&".join("k%d=v" % i for i in range(16)), "too many parameters"),
    ("mac=52:54:00:00:99:99&uuid=%00", "NUL byte in a parameter"),
]
BAD_HOSTS = ["evil host", "evil;reboot", "${net0/ip}", "a/b", "[::1", "[zz::1]:80", "host:99999",
             "host:0", "host:", "-host", "x" * 300, "host:80:80", "127.0.0.1:80@evil",
             "host:80 ", "h%0ax", "[::1]x"]


def c_hostile(lab):
    out = []
    before = lab.clients()
    refused0 = lab.log_count("refused")
    n = 0
    for q, want in HOSTILE:
        st, body = lab.get(q)
        n += 1
        out.append((st == 400 and body.strip() == want,
                    "?%.80s: expected 400 %r, got %s %.200r" % (q, want, st, body)))
        out.append(("${" not in body and "\r" not in body and body.count("\n") <= 1,
                    "?%.80s: the answer echoes hostile input: %.200r" % (q, body)))
    for h in BAD_HOSTS:
        for q in ("", "mac=02:00:00:00:00:01"):
            st, body = lab.raw(("GET /boot.ipxe%s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                                % ("?" + q if q else "", h)).encode())
            n += 1
            out.append((st == 400 and body.strip() == "bad Host header",
                        "Host %.60r (?%s): expected 400 'bad Host header', got %s %.200r" % (h, q, st, body)))
    # A raw NUL byte in the Host header: libmicrohttpd 0.9.75 ends the value
    # at the NUL, so the daemon sees "127.0.0.1".  Either a refusal, or a
    # script built from that clean prefix only - never from what follows.
    # (The known persistent client's MAC: nothing may be enrolled either way.)
    st, body = lab.raw(b"GET /boot.ipxe?mac=02:00:00:00:00:01 HTTP/1.1\r\nHost: 127.0.0.1\x00.evil\r\n"
                       b"Connection: close\r\n\r\n")
    out.append((st == 400 or (st == 200 and "evil" not in body and "127.0.0.1" in body),
                "a NUL byte in Host: expected 400 or a script without the bytes after it, got %s %.200r"
                % (st, body)))
    # A huge URL: refused by the HTTP layer before any parsing.
    st, body = lab.raw(("GET /boot.ipxe?mac=%s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                        % ("A" * 200000)).encode())
    out.append((st in (400, 413, 414, 431), "a 200 kB URL: expected 400/413/414/431, got %s %.200r" % (st, body)))
    print("     (a 200 kB URL is answered %s %r)" % (st, body.strip()[:80]))
    # Exactly 16 parameters are fine (the known persistent client, so nothing is enrolled).
    st, body = lab.get("mac=02:00:00:00:00:01&" + "&".join("k%d=v" % i for i in range(15)))
    out.append((st == 200 and is_sanboot(body, lab, P + ":persist1"), "16 parameters: %s %r" % (st, body)))
    out.append((lab.d.alive(), "pristined died"))
    out.append((lab.clients().keys() == before.keys(), "hostile requests changed the clients: %s"
                % sorted(set(lab.clients()) ^ set(before))))
    refused = lab.log_count("refused") - refused0
    out.append((refused >= n, "only %d of %d refused requests were logged" % (refused, n)))
    return problems_of(out)


def c_methods(lab):
    out = []
    before = lab.clients()
    for m in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
        st, body = lab.get(method=m)
        out.append((st == 405 and "GET /boot.ipxe" in body, "%s: expected 405, got %s %r" % (m, st, body)))
    st, body = lab.raw(b"POST /boot.ipxe?mac=02:00:00:00:00:99 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 21\r\n"
                       b"Connection: close\r\n\r\nmac=02:00:00:00:00:99")
    out.append((st in (405, 413), "POST with a body: expected 405/413, got %s %r%s" % (
        st, body, " (the connection was closed without an answer)" if st == 0 else "")))
    # (/boot.ipxe%00 is the first step: libmicrohttpd unescapes the path and
    # the NUL ends it - the same resource, so not checked here.)
    for path in ("/", "/boot.ipxe/", "/Boot.ipxe", "/boot.ipxe.bak", "/../boot.ipxe", "/v1/clients",
                 "//boot.ipxe", "/boot.ipxe;mac=02:00:00:00:00:99"):
        st, body = lab.get(path=path)
        out.append((st == 404 and "GET /boot.ipxe" in body, "%s: expected 404, got %s %r" % (path, st, body)))
    out.append((lab.d.alive(), "pristined died"))
    out.append((lab.clients().keys() == before.keys(), "other methods/paths changed the clients: %s"
                % sorted(set(lab.clients()) ^ set(before))))
    return problems_of(out)


def c_persistent(lab):
    out = []
    ini = P + ":persist1"
    data = pattern("persist1")
    lab.write(ini, data)
    for mac in ("02:00:00:00:00:01", "02-00-00-00-00-01", "020000000001", "02-00-00-00-00-01".upper()):
        st, body = lab.boot(mac)
        out.append((st == 200 and is_sanboot(body, lab, ini), "mac %s: %s %r" % (mac, st, body)))
    # Sessions held from here and from another address change nothing either.
    s1, s2 = lab.session(ini, "127.0.0.1"), lab.session(ini, "127.0.0.2")
    st, body = lab.boot("02-00-00-00-00-01", ip="10.0.2.15")
    out.append((st == 200 and is_sanboot(body, lab, ini), "with sessions held: %s %r" % (st, body)))
    out.append((not ended(s1) and not ended(s2), "a persistent client's sessions were ended by a boot"))
    out.append((lab.read(ini, s=s1) == data, "a persistent client's data is gone after boot requests"))
    s1.logout(); s2.logout()
    out.append((lab.read(ini) == data, "a persistent client's data is gone after boot requests"))
    out.append((lab.log_count("client %s reset" % ini) == 0, "a persistent client was reset"))
    c = lab.client(ini)
    out.append((c["last_boot"] > 0 and c["policy"] == "persistent" and c["mac"] == "02:00:00:00:00:01",
                "API: %s" % c))
    return problems_of(out)


def c_enroll_auto(lab):
    out = []
    ini = "iqn.2026-11.org.pristine:pc-02000000aa01"
    n0 = len(lab.clients())
    st, body = lab.boot("02-00-00-00-AA-01", uuid="6b1f4a0e-0000-4000-8000-00000000aa01")
    out.append((st == 200 and is_sanboot(body, lab, ini), "unknown MAC under enroll auto: %s %r" % (st, body)))
    c = lab.client(ini)
    out.append((c is not None and c["boot_uuid"] == "6b1f4a0e-0000-4000-8000-00000000aa01" and c["uuid"] is None,
                "the reported UUID is not shown as boot_uuid (or was learned as uuid): %s" % c))
    st, body = lab.boot("02-00-00-00-aa-01")
    out.append((st == 200 and is_sanboot(body, lab, ini), "second boot: %s %r" % (st, body)))
    c = lab.client(ini)
    out.append((c is not None and c["name"] == "pc-02000000aa01" and c["mac"] == "02:00:00:00:aa:01" and
                c["origin"] == "auto" and c["last_boot"] > 0,
                "enrolled client: %s" % c))
    out.append((len(lab.clients()) == n0 + 1, "enrolled %d clients, not 1" % (len(lab.clients()) - n0)))
    out.append((lab.log_count("client %s (MAC 02:00:00:00:aa:01) enrolled at boot" % ini) == 1,
                "enrolment not logged once"))
    return problems_of(out)


def c_placeholder_uuid(lab):
    """Every QEMU VM without -uuid, and many cloned PCs, report the same
    SMBIOS UUID.  A second PC must not become the first through it."""
    out = []
    zero = "00000000-0000-0000-0000-000000000000"
    a, b = "iqn.2026-11.org.pristine:pc-02000000bb01", "iqn.2026-11.org.pristine:pc-02000000bb02"
    st, body = lab.boot("02-00-00-00-bb-01", uuid=zero)
    out.append((st == 200 and is_sanboot(body, lab, a), "PC A: %s %r" % (st, body)))
    st, body = lab.boot("02-00-00-00-bb-02", uuid=zero)
    out.append((st == 200 and is_sanboot(body, lab, b),
                "PC B (another MAC, the same all-zero UUID) was answered as %r instead of being enrolled as %s"
                % (re.findall(r"set initiator-iqn (\S+)", body), b)))
    cb = lab.client(b)
    out.append((cb is not None and cb["mac"] == "02:00:00:00:bb:02", "PC B not enrolled with its MAC: %s" % cb))
    ca = lab.client(a)
    out.append((ca is not None and ca["mac"] == "02:00:00:00:bb:01", "PC A lost its MAC: %s" % ca))
    # A UUID an admin gave a client does identify it, whatever the MAC.
    u = "3e1f0c55-1111-4222-8333-444455556666"
    res = lab.add(P + ":by-uuid", None, "persistent", uuid=u)
    out.append((res.get("uuid") == u, "API: %s" % res))
    st, body = lab.boot("02-00-00-00-bb-03", uuid=u.upper())
    out.append((st == 200 and is_sanboot(body, lab, P + ":by-uuid"), "by admin UUID: %s %r" % (st, body)))
    out.append((lab.client("iqn.2026-11.org.pristine:pc-02000000bb03") is None, "enrolled although known by UUID"))
    # ... but a reported UUID is never learned: another MAC with A's UUID is not A.
    ua = "3e1f0c55-1111-4222-8333-444455550001"
    lab.boot("02-00-00-00-bb-01", uuid=ua)
    st, body = lab.boot("02-00-00-00-bb-04", uuid=ua)
    out.append((st == 200 and is_sanboot(body, lab, "iqn.2026-11.org.pristine:pc-02000000bb04"),
                "a UUID A reported made another MAC A: %s %r" % (st, body)))
    return problems_of(out)


def c_online_elsewhere(lab):
    out = []
    ini, mac = P + ":rob-online", "02:00:00:00:00:10"
    data = pattern("online-elsewhere")
    s = lab.session(ini, "127.0.0.2")
    s.write(LBA, data)
    resets0 = lab.log_count("client %s reset" % ini)
    st, body = lab.boot(mac.replace(":", "-"))
    out.append((st == 200 and is_message(body) and "online from 127.0.0.2" in body and
                "nothing was reset" in body, "boot while online from 127.0.0.2: %s %r" % (st, body)))
    out.append((not ended(s), "the session from 127.0.0.2 was ended"))
    out.append((lab.read(ini, s=s) == data, "the online client's data was reset"))
    out.append((lab.log_count("client %s reset" % ini) == resets0, "the online client was reset"))
    c = lab.client(ini)
    out.append((c["online"] and c["used_bytes"] > 0, "API after the refused boot: %s" % c))
    s.logout()
    out.append((wait_until(lambda: not lab.client(ini)["online"], 10), "still online after logout"))
    out.append((lab.read(ini) == data, "data lost at logout"))
    # Offline now: the same request is a reboot and resets it.
    st, body = lab.boot(mac)
    out.append((st == 200 and is_sanboot(body, lab, ini), "boot once offline: %s %r" % (st, body)))
    out.append((lab.read(ini) == lab.golden(), "reset-on-boot client not reset once offline"))
    return problems_of(out)


def c_stale_same_address(lab):
    out = []
    ini, mac = P + ":rob-stale", "02:00:00:00:00:11"
    data = pattern("stale-same")
    s = lab.session(ini, "127.0.0.1")
    s.write(LBA, data)
    st, body = lab.boot(mac)
    out.append((st == 200 and is_sanboot(body, lab, ini), "boot with a stale session: %s %r" % (st, body)))
    out.append(("boot: %s reboots with 1 stale session from 127.0.0.1: ending them" % ini in lab.d.log(),
                "the stale session's end is not logged"))
    out.append((ended(s), "the stale session from 127.0.0.1 was not ended"))
    out.append((lab.log_count("client %s reset (reset-on-boot)" % ini) == 1, "no reset (reset-on-boot) logged"))
    out.append((wait_until(lambda: not lab.client(ini)["online"], 10), "still online"))
    out.append((lab.read(ini) == lab.golden(), "the overlay was not reset"))
    s.close()
    return problems_of(out)


def c_maintenance(lab):
    out = []
    ini, mac = P + ":maint", "02:00:00:00:00:13"
    own = pattern("maint-own")
    lab.write(ini, own)
    r = lab.ctl("image", "edit", lab.imgname, "--client", ini)
    out.append((r.returncode == 0, "image edit: %s %s" % (r.returncode, r.stderr)))
    draft = pattern("maint-draft")
    lab.write(ini, draft, lba=LBA + 1)
    resets0 = lab.log_count("client %s reset" % ini)
    for _ in range(2):
        st, body = lab.boot(mac)
        out.append((st == 200 and is_sanboot(body, lab, ini), "maintenance boot: %s %r" % (st, body)))
    out.append(("boot: %s boots the draft of image %s (maintenance)" % (ini, lab.imgname) in lab.d.log(),
                "the maintenance boot is not logged"))
    out.append((lab.log_count("client %s reset" % ini) == resets0, "the maintenance client was reset at boot"))
    c = lab.client(ini)
    out.append((c["maintenance"] is True, "API: not maintenance: %s" % c))
    out.append((lab.read(ini, lba=LBA + 1) == draft, "the draft lost the maintenance write"))
    r = lab.ctl("image", "discard", lab.imgname)
    out.append((r.returncode == 0, "image discard: %s %s" % (r.returncode, r.stderr)))
    out.append((lab.read(ini) == own, "the maintenance client's own overlay was not kept"))
    # An ordinary reset-on-boot client again: its next boot resets it.
    st, body = lab.boot(mac)
    out.append((st == 200 and is_sanboot(body, lab, ini) and lab.read(ini) == lab.golden(),
                "after discard, a boot did not reset it: %s %r" % (st, body)))
    return problems_of(out)


def c_sched_options(lab):
    out = []
    base = [PRISTINED, "--image", os.path.join(lab.tmp, "g.raw"), "--state", os.path.join(lab.tmp, "s-x"),
            "--listen", "127.0.0.1:%d" % free_port(), "--boot-listen", "127.0.0.1:%d" % free_port()]
    for extra, want in ((["--policy", "scheduled"], "needs --reset-at"),
                        (["--policy", "scheduled", "--reset-at", "25:00"], "--reset-at: '25:00' is not a time of day HH:MM"),
                        (["--policy", "scheduled", "--reset-at", "3"], "--reset-at: '3' is not a time of day HH:MM"),
                        (["--policy", "nightly"], "--policy: 'nightly' is not persistent"),
                        (["--boot-portal", "evil;host"], "--boot-portal: 'evil;host' is not HOST or HOST:PORT")):
        try:
            r = subprocess.run(base + extra, capture_output=True, text=True, timeout=20)
            rc, err = r.returncode, r.stderr
        except subprocess.TimeoutExpired:
            rc, err = None, "(still running after 20 s)"
        out.append((rc not in (0, None) and want in err, "pristined %s: %s %r" % (" ".join(extra), rc, err)))
    st, res = lab.api("POST", "/v1/clients", {"initiator": P + ":sched-bad", "policy": "scheduled",
                                              "reset_at": "24:61"})
    out.append((st == 400, "API reset_at 24:61: %s %s" % (st, res)))
    out.append((lab.client(P + ":sched-bad") is None, "a refused client was added"))
    return problems_of(out)


def sched_setup(lab):
    """Two scheduled clients at the next minute; one keeps a session open."""
    now = time.localtime()
    if now.tm_sec > 50:          # too close to the minute: let it pass first
        time.sleep(61 - now.tm_sec)
        now = time.localtime()
    at = time.localtime(time.time() + 60)
    lab.sched_at = "%02d:%02d" % (at.tm_hour, at.tm_min)
    lab.sched_t = time.time() + 60 - at.tm_sec
    for ini, mac in ((P + ":sched-off", "02:00:00:00:00:20"), (P + ":sched-on", "02:00:00:00:00:21")):
        res = lab.add(ini, mac, "scheduled", reset_at=lab.sched_at)
        if res.get("reset_at") != lab.sched_at or res.get("policy") != "scheduled":
            raise RuntimeError("API answer for %s: %s" % (ini, res))
        lab.write(ini, pattern(ini))
    lab.sched_hold = lab.session(P + ":sched-on", "127.0.0.1")
    print("     (scheduled reset at %s, in %.0f s)" % (lab.sched_at, lab.sched_t - time.time()))
    return []


def c_scheduled(lab):
    out = []
    off, on = P + ":sched-off", P + ":sched-on"
    c = lab.client(off)
    out.append((c["reset_at"] == lab.sched_at and c["policy"] == "scheduled", "API: %s" % c))
    out.append((lab.read(off) == pattern(off), "scheduled client reset too early"))
    t0 = time.time()
    done = wait_until(lambda: "client %s reset (scheduled)" % off in lab.d.log(),
                      max(5, lab.sched_t - time.time() + SCHED_WAIT - 60 + 30))
    print("     (scheduled reset seen %.0f s after %s)" % (time.time() - lab.sched_t, lab.sched_at))
    out.append((done, "no scheduled reset of the offline client within the wait (%.0f s)" % (time.time() - t0)))
    out.append((lab.read(off) == lab.golden(), "the offline scheduled client's data survived its reset time"))
    s = lab.sched_hold
    out.append(("client %s: scheduled reset at %s while online" % (on, lab.sched_at) in lab.d.log(),
                "the online scheduled client's postponed reset is not logged"))
    out.append((lab.client(on)["reset_due"] is True, "online scheduled client not reset_due: %s" % lab.client(on)))
    out.append((not ended(s) and lab.read(on, s=s) == pattern(on), "the online scheduled client was reset"))
    st, body = lab.boot("02:00:00:00:00:21")
    out.append((st == 200 and is_sanboot(body, lab, on), "its boot: %s %r" % (st, body)))
    out.append((ended(s), "its stale session was not ended at its boot"))
    out.append(("client %s reset (scheduled, at boot)" % on in lab.d.log(), "no 'scheduled, at boot' reset"))
    out.append((lab.read(on) == lab.golden(), "the due scheduled client was not reset at its boot"))
    out.append((lab.client(on)["reset_due"] is False, "still reset_due after the boot"))
    s.close()
    return problems_of(out)


def c_chap(lab):
    """CHAP set through the API reaches the PC in its script, is checked at
    login, is never shown or logged, and can be turned off."""
    out = []
    ini, mac = P + ":chap", "02:00:00:00:00:5a"
    secret, msecret = "api-chap-secret-31", "api-target-secret-7"
    f, mf = os.path.join(lab.tmp, "chap.secret"), os.path.join(lab.tmp, "mutual.secret")
    with open(f, "w") as fh:
        fh.write(secret + "\n")
    with open(mf, "w") as fh:
        fh.write(msecret + "\n")
    r = lab.ctl("client", "add", ini, "--mac", mac, "--chap-user", "pc-chap", "--chap-secret-file", f)
    out.append((r.returncode == 0, "client add --chap-user: %d %s" % (r.returncode, r.stdout + r.stderr)))
    r = lab.ctl("--json", "client", "show", ini)
    out.append((r.returncode == 0 and json.loads(r.stdout).get("chap") == "one-way" and secret not in r.stdout,
                "client show: chap one-way, secret not shown: %s" % r.stdout))
    st, body = lab.boot(mac=mac)
    out.append((st == 200 and is_sanboot(body, lab, ini) and
                "set username pc-chap\nset password %s\n" % secret in body and "reverse" not in body,
                "boot script of a CHAP client: %s %r" % (st, body)))
    s = I.Session("127.0.0.1", lab.port, ini, target_name=lab.target, timeout=20)
    try:
        r = s.login(raise_on_fail=False)
        out.append((r.status_class == 2, "login without CHAP answered 0x%02x%02x" % (r.status_class, r.status_detail)))
    finally:
        s.close()
    s = I.Session("127.0.0.1", lab.port, ini, target_name=lab.target, timeout=20)
    try:
        s.login(chap={"user": "pc-chap", "secret": secret})
        s.logout()
    except I.ISCSIError as e:
        out.append((False, "login with the API's CHAP secret: %s" % e))
    finally:
        s.close()
    r = lab.ctl("client", "set", ini, "--chap-user", "pc-chap", "--chap-secret-file", f,
                "--mutual-user", "pristine", "--mutual-secret-file", mf)
    out.append((r.returncode == 0 and "chap mutual" in r.stdout, "client set mutual: %s" % (r.stdout + r.stderr)))
    st, body = lab.boot(mac=mac)
    out.append(("set reverse-username pristine\nset reverse-password %s\n" % msecret in body,
                "mutual settings not in the script: %r" % body))
    # refusals: nothing changes, no secret quoted back
    with open(f + ".short", "w") as fh:
        fh.write("short\n")
    for args, why in ((["--chap-secret-file", f], "CHAP settings need the CHAP user name too"),
                      (["--chap-user", "x", "--chap-secret-file", f + ".short"], "12 to 255 bytes"),
                      (["--chap-user", "x"], "needs a CHAP secret"),
                      (["--chap-user", "x", "--chap-secret-file", f, "--mutual-user", "y"],
                       "both the mutual user and the mutual secret"),
                      (["--chap-user", "x", "--chap-secret-file", f, "--mutual-user", "y",
                        "--mutual-secret-file", f], "must differ"),
                      (["--no-chap", "--chap-user", "x"], "does not go with"),
                      (["--chap-user", "x", "--chap-secret-file", "/nonexistent/file"], "No such file")):
        r = lab.ctl("client", "set", ini, *args)
        text = r.stdout + r.stderr
        out.append((r.returncode != 0 and why in text and secret not in text,
                    "client set %s: %d %r (expected a refusal saying %r)" % (args, r.returncode, text, why)))
    r = lab.ctl("--json", "client", "show", ini)
    out.append((json.loads(r.stdout).get("chap") == "mutual", "a refused change changed CHAP: %s" % r.stdout))
    # a valid CHAP secret that an iPXE script cannot carry
    with open(f + ".dollar", "w") as fh:
        fh.write("has-${dollar}-in-it\n")
    r = lab.ctl("client", "set", ini, "--chap-user", "pc-chap", "--chap-secret-file", f + ".dollar")
    st, body = lab.boot(mac=mac)
    out.append((r.returncode == 0 and is_message(body) and "dollar" not in body and
                "which an iPXE script cannot carry" in lab.d.log(),
                "a '$' secret: %d, script %r" % (r.returncode, body)))
    r = lab.ctl("client", "set", ini, "--no-chap")
    st, body = lab.boot(mac=mac)
    out.append((r.returncode == 0 and "chap none" in r.stdout and is_sanboot(body, lab, ini) and
                "username" not in body, "--no-chap: %s %r" % (r.stdout + r.stderr, body)))
    mode = os.stat(os.path.join(lab.state, "clients.json")).st_mode & 0o777
    out.append((mode == 0o600, "clients.json (holds CHAP secrets) has mode %o" % mode))
    log = lab.d.log()
    out.append((secret not in log and msecret not in log, "a CHAP secret is in the daemon log"))
    return problems_of(out)


def c_bound_boot(lab):
    """A client bound to 127.0.0.2 gets its script only from there, and a
    request from elsewhere neither resets it nor hands out its script."""
    out = []
    ini, mac = P + ":bound", "02:00:00:00:00:5b"
    lab.add(ini, mac, "reset-on-boot", ip="127.0.0.2")
    data = pattern("B")
    s = lab.session(ini, src="127.0.0.2")
    s.write(LBA, data)
    s.logout()
    st, body = lab.boot(mac=mac)     # from 127.0.0.1
    out.append((st == 200 and is_message(body) and "may not boot from this address" in body,
                "boot request from another address: %s %r" % (st, body)))
    out.append(("from 127.0.0.1, an address it is not bound to: refused (possible spoofing)" in lab.d.log(),
                "the refusal is not logged"))
    s = lab.session(ini, src="127.0.0.2")
    out.append((lab.read(ini, s=s) == data, "a refused boot request reset the client"))
    s.logout()
    st, body = lab.raw(("GET /boot.ipxe?mac=%s&uuid=&ip= HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                        "Connection: close\r\n\r\n" % (mac, lab.bport)).encode(), src="127.0.0.2")
    out.append((st == 200 and is_sanboot(body, lab, ini), "boot request from its address: %s %r" % (st, body)))
    s = lab.session(ini, src="127.0.0.2")
    out.append((lab.read(ini, s=s) == lab.golden(), "its boot request did not reset it"))
    s.logout()
    return problems_of(out)


# ====================================================================== daemon B: enroll = deny

def c_deny(lab):
    out = []
    st, body = lab.boot("52-54-00-AA-BB-CC", uuid="12345678-9ABC-def0-1234-56789abcdef0")
    out.append((st == 200 and is_message(body) and "52:54:00:aa:bb:cc" in body and "not a client" in body
                and "12345678-9abc-def0-1234-56789abcdef0" in body,
                "unknown PC under deny: %s %r" % (st, body)))
    st, body = lab.boot("52-54-00-aa-bb-cd")
    out.append((st == 200 and is_message(body) and "52:54:00:aa:bb:cd" in body, "no UUID: %s %r" % (st, body)))
    out.append(("boot: unknown PC from 127.0.0.1 (MAC 52:54:00:aa:bb:cc" in lab.d.log() and
                "refused (enroll = deny)" in lab.d.log(), "the refusal is not logged"))
    st, body = lab.boot("52:54:00:12:34:01")
    out.append((st == 200 and is_sanboot(body, lab, P + ":known"), "the [client] with mac =: %s %r" % (st, body)))
    out.append((sorted(lab.clients()) == [P + ":known"], "clients under deny: %s" % sorted(lab.clients())))
    out.append((lab.d.alive(), "pristined died"))
    return problems_of(out)


def main():
    for tool in ("curl",):
        if not shutil.which(tool):
            print("%s not installed" % tool)
            return 77
    if not os.access(PRISTINED, os.X_OK) or not os.access(CTL, os.X_OK):
        print("%s or %s not built" % (PRISTINED, CTL))
        return 77
    if "--boot-listen" not in subprocess.run([PRISTINED, "--help"], capture_output=True, text=True).stdout + \
            subprocess.run([PRISTINED, "--help"], capture_output=True, text=True).stderr:
        print("pristined has no --boot-listen")
        return 77
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1, source_address=("127.0.0.2", 0)).close()
    except ConnectionRefusedError:
        pass
    except OSError as e:
        print("cannot bind 127.0.0.2: %s" % e)
        return 77

    tmp = tempfile.mkdtemp(prefix="pristine-bootep.")
    ck = I.Checker()
    daemons = []
    try:
        image = I.image_bytes(MIB)
        g = os.path.join(tmp, "g.raw")
        with open(g, "wb") as f:
            f.write(image)

        # ---- daemon A
        port, bport = free_port(), free_port()
        state = os.path.join(tmp, "state-a")
        target = "iqn.2026-11.org.pristine:g"
        da = Daemon(tmp, "a", ["--image", g, "--state", state, "--listen", "127.0.0.1:%d" % port,
                               "--boot-listen", "127.0.0.1:%d" % bport])
        daemons.append(da)
        da.start()
        lab = Lab(da, state, port, bport, target, image)
        lab.tmp, lab.imgname = tmp, "g"
        ck.case("first step: chain with iPXE's variables", c_first_step, lab)
        ck.case("missing identification: a message, nothing enrolled", c_missing, lab)
        lab.add(P + ":persist1", "02:00:00:00:00:01", "persistent", name="persist1")
        lab.add(P + ":rob-online", "02-00-00-00-00-10", "reset-on-boot")
        lab.add(P + ":rob-stale", "020000000011", "reset-on-boot")
        lab.add(P + ":maint", "02:00:00:00:00:13", "reset-on-boot")
        have_sched = ck.case("scheduled: two clients at the next minute (set-up)", sched_setup, lab)
        ck.case("hostile parameters and Host headers: 400, nothing enrolled", c_hostile, lab)
        ck.case("other methods and paths: 405/404", c_methods, lab)
        ck.case("persistent client: sanboot script, never reset", c_persistent, lab)
        ck.case("enroll auto: pc-<mac>, once", c_enroll_auto, lab)
        ck.case("online from another address: message, nothing reset", c_online_elsewhere, lab)
        ck.case("stale session from the same address: ended, reset", c_stale_same_address, lab)
        ck.case("maintenance client: boots the draft, own overlay kept", c_maintenance, lab)
        ck.case("scheduled: option and API checks", c_sched_options, lab)
        ck.case("placeholder UUID: a second PC is not the first", c_placeholder_uuid, lab)
        ck.case("CHAP from the API: in the script, checked at login, never shown", c_chap, lab)
        ck.case("a bound client boots only from its address", c_bound_boot, lab)
        if have_sched:
            ck.case("scheduled: offline reset at its time, online one at its next boot", c_scheduled, lab)
        ck.case("daemon A stops cleanly (no sanitizer report)", da.stop)

        # ---- daemon B: enroll = deny from a configuration file
        port, bport = free_port(), free_port()
        state = os.path.join(tmp, "state-b")
        conf = os.path.join(tmp, "pristine.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = 127.0.0.1:%d\nstate = %s\nboot-listen = 127.0.0.1:%d\n\n"
                    "[defaults]\nenroll = deny\n\n[image g]\npath = %s\n\n"
                    "[client known]\ninitiator = %s:known\nmac = 52:54:00:12:34:01\n"
                    "policy = reset-on-boot\n" % (port, state, bport, g, P))
        db = Daemon(tmp, "b", ["-c", conf])
        daemons.append(db)
        db.start()
        labb = Lab(db, state, port, bport, target, image)
        ck.case("enroll = deny: a message naming the MAC, nothing enrolled", c_deny, labb)
        ck.case("daemon B stops cleanly (no sanitizer report)", db.stop)
        with open(g, "rb") as f:
            same = f.read() == image
        ck.case("the golden image is unchanged", lambda: [] if same else ["the golden image changed"])
        return ck.finish()
    finally:
        for d in daemons:
            d.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
