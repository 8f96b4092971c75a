"""Shared helpers of the web console's tests (tests/console/test_*.py):
start build/asan/pristined (or $PRISTINED) from a configuration file with
[server] console-listen, set the console password with pristinectl, and
talk HTTPS to the console (http.client over ssl, trusting the daemon's
own self-signed certificate, optionally from another source address);
the checks' bookkeeping (check, failures, finish) every test shares.

Everything is bounded in time; daemons are stopped (SIGTERM, then the
sanitizer check of tests/lib/iscsi_initiator.stop_process) at the end."""
import http.client
import json
import os
import shutil
import socket
import ssl
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
TARGET = "iqn.2026-11.org.pristine:golden"
SKIP = 77


def prerequisites():
    """None when the tests can run, else the reason to skip."""
    for path, what in ((PRISTINED, "pristined (make asan)"), (CTL, "pristinectl (make)")):
        if not os.access(path, os.X_OK):
            return "%s not built" % what
    # 127.0.0.2 stands for "another computer": Linux routes all of 127/8 to lo.
    s = socket.socket()
    try:
        s.bind(("127.0.0.2", 0))
    except OSError:
        return "cannot bind 127.0.0.2 (another source address)"
    finally:
        s.close()
    return None


free_port = I.free_port
failures = []


def check(cond, what):
    """Print cond's verdict on what; a false cond is kept in failures.
    Returns cond."""
    print("%s  %s" % ("ok  " if cond else "FAIL", what), flush=True)
    if not cond:
        failures.append(what)
    return cond


def stop_checked(d):
    """Stop daemon d; each of its problems (exit status, a sanitizer
    report) is a failed check."""
    for p in d.stop():
        check(False, p)


def finish(tmp):
    """The end of a test: tmp removed unless a check failed (then it is
    kept to look at), the count printed; the exit status (0 or 1)."""
    if not failures:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d failure(s)" % len(failures))
    return 1 if failures else 0


class Pristined:
    """pristined -c TMP/NAME.conf (conf, the text, written there), its
    output in TMP/NAME.log; state is the directory the text names as
    [server] state.  start() is the subclass's: spawn(), then wait_up()."""

    def __init__(self, tmp, name, state, conf):
        self.tmp, self.state = tmp, state
        self.conf = os.path.join(tmp, name + ".conf")
        with open(self.conf, "w") as f:
            f.write(conf)
        self.log_path = os.path.join(tmp, name + ".log")
        self.proc = None

    def spawn(self):
        """Start the process with the sanitizers' exit codes set (see
        tests/lib/iscsi_initiator.stop_process); the log starts empty."""
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PRISTINED, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)

    def wait_up(self, up, timeout, what):
        """Return once up() is true; RuntimeError (with the log) when the
        process exits first or timeout s pass without it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if up():
                return
            if self.proc.poll() is not None:
                raise RuntimeError("pristined exited at start:\n" + self.log())
            time.sleep(0.05)
        raise RuntimeError("%s not up within %d s:\n%s" % (what, timeout, self.log()))

    def log(self):
        """All the daemon has printed so far ("" before its start)."""
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
        problems = I.stop_process(self.proc, self.log, timeout=30)
        self.logf.close()
        self.proc = None
        return problems

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def ctl(self, *args, stdin=None):
        """pristinectl --state STATE ARGS...: (exit status, stdout + stderr)."""
        r = subprocess.run([CTL, "--state", self.state] + list(args), input=stdin,
                           capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout + r.stderr

    def set_password(self, pw):
        rc, out = self.ctl("console", "passwd", "--stdin", stdin=pw + "\n")
        if rc != 0:
            raise RuntimeError("console passwd failed (%d): %s" % (rc, out))

    def admin(self, method, path):
        """The admin socket, raw: (status, JSON)."""
        c = http.client.HTTPConnection("x", timeout=30)
        c.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.sock.settimeout(30)
        c.sock.connect(os.path.join(self.state, "pristined.sock"))
        c.request(method, path)
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        return r.status, (json.loads(text) if text.strip() else None)

    def tls_context(self):
        """Trust exactly the daemon's self-signed certificate, for 127.0.0.1."""
        ctx = ssl.create_default_context(cafile=os.path.join(self.state, "console", "cert.pem"))
        ctx.check_hostname = True
        return ctx


class Daemon(Pristined):
    """pristined with one image and the console on 127.0.0.1: iSCSI on
    port, the console on cport."""

    def __init__(self, tmp, image, extra=""):
        self.port = free_port()
        self.cport = free_port()
        state = os.path.join(tmp, "state")
        super().__init__(tmp, "pristined", state,
                         "[server]\nlisten = 127.0.0.1:%d\nstate = %s\nlog-level = info\n"
                         "console-listen = 127.0.0.1:%d\n%s\n[image golden]\npath = %s\n"
                         % (self.port, state, self.cport, extra, image))

    def start(self, timeout=30):
        self.spawn()
        self.wait_up(lambda: "console: https://" in self.log() and
                     "listening on 127.0.0.1:%d" % self.port in self.log(), timeout, "console")


class Reply:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body.decode())

    def header(self, name):
        return self.headers.get(name.lower())

    def cookie(self):
        """The session cookie's "pristine_session=VALUE" from Set-Cookie, or None."""
        sc = self.header("set-cookie")
        return sc.split(";")[0] if sc else None

    def __repr__(self):
        return "<%d %r>" % (self.status, self.body[:200])


def request(d, method, path, body=None, cookie=None, csrf=None, source="127.0.0.1",
            headers=None, timeout=30):
    """One HTTPS request to d's console from source: a Reply."""
    c = http.client.HTTPSConnection("127.0.0.1", d.cport, context=d.tls_context(),
                                    source_address=(source, 0), timeout=timeout)
    h = dict(headers or {})
    if cookie:
        h["Cookie"] = cookie
    if csrf:
        h["X-CSRF-Token"] = csrf
    data = None
    if body is not None:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        h.setdefault("Content-Type", "application/json")
    try:
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        hdrs = {}
        for k, v in r.getheaders():
            hdrs[k.lower()] = v
        return Reply(r.status, hdrs, r.read())
    finally:
        c.close()


def login(d, pw, source="127.0.0.1"):
    """Log in: (cookie, csrf), asserting 200."""
    r = request(d, "POST", "/login", {"password": pw}, source=source)
    if r.status != 200:
        raise AssertionError("login failed: %r" % r)
    return r.cookie(), r.json()["csrf"]


def workdir(prefix, mib):
    """The start of a test: None when it cannot run here (the reason
    printed: exit SKIP), else (tmp, image), a new directory named prefix...
    and in it golden.img, mib MiB of random bytes."""
    why = prerequisites()
    if why:
        print(why)
        return None
    tmp = tempfile.mkdtemp(prefix=prefix)
    img = os.path.join(tmp, "golden.img")
    make_image(img, mib)
    return tmp, img


def make_image(path, mib):
    """A golden image of random bytes."""
    with open(path, "wb") as f:
        f.write(os.urandom(mib * 1024 * 1024))
