#!/usr/bin/env python3
"""Issue 16, the console's certificate and start-up, against live
build/asan/pristined daemons:
  - the self-signed pair made at the first start is kept (0600) and
    reused: the same SHA-256 fingerprint is logged at the next start, and
    it is the fingerprint of what the server presents
  - console-cert/console-key (the admin's own pair): served as is, no
    self-signed pair made
  - a key that is not the certificate's, a missing file, a port already
    taken: the daemon does not start (exit status 1) and says why
Exit 0 (pass), 1 (fail), 77 (skip)."""
import hashlib
import os
import re
import shutil
import socket
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import consolelib as C  # noqa: E402

check = C.check


def logged_fpr(log):
    m = re.findall(r"certificate SHA-256 ([0-9A-F:]{95})", log)
    return m[-1] if m else None


def served_fpr(port):
    """The SHA-256 fingerprint of the certificate the server presents."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        with ctx.wrap_socket(s) as t:
            der = t.getpeercert(binary_form=True)
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())


def start_fails(d, why):
    """d must not start: exit 1 with why in its log."""
    try:
        d.start(timeout=20)
    except RuntimeError:
        pass
    rc = d.proc.wait(20) if d.proc else None
    log = d.log()
    d.logf.close()
    d.proc = None
    check(rc == 1 and why in log, "does not start (exit %s) and says '%s'" % (rc, why))
    for bad in ("ERROR: AddressSanitizer", "runtime error:"):
        check(bad not in log, "no sanitizer report (%s)" % bad)


def main():
    w = C.workdir("console_cert_", 2)
    if not w:
        return C.SKIP
    tmp, img = w
    daemons = []
    try:
        run(tmp, img, daemons)
    finally:
        for d in daemons:
            C.stop_checked(d)
    return C.finish(tmp)


def daemon(tmp, name, img, extra=""):
    sub = os.path.join(tmp, name)
    os.makedirs(sub)
    return C.Daemon(sub, img, extra)


def run(tmp, img, daemons):
    # Self-signed, made once, reused.
    a = daemon(tmp, "a", img)
    daemons.append(a)
    a.start()
    f1 = logged_fpr(a.log())
    check(f1 is not None and "made a self-signed certificate" in a.log(), "first start: made, fingerprint %s" % f1)
    check(served_fpr(a.cport) == f1, "the logged fingerprint is the served certificate's")
    C.stop_checked(a)
    os.rename(a.log_path, a.log_path + ".1")
    a.start()
    check(logged_fpr(a.log()) == f1 and "made a self-signed" not in a.log(),
          "second start: the same certificate, not made again")
    check(served_fpr(a.cport) == f1, "and it is the one served")
    own_cert = os.path.join(tmp, "own-cert.pem")
    own_key = os.path.join(tmp, "own-key.pem")
    shutil.copy(os.path.join(a.state, "console", "cert.pem"), own_cert)
    shutil.copy(os.path.join(a.state, "console", "key.pem"), own_key)

    # The admin's own pair.
    b = daemon(tmp, "b", img, "console-cert = %s\nconsole-key = %s" % (own_cert, own_key))
    daemons.append(b)
    b.start()
    check(logged_fpr(b.log()) == f1 and served_fpr(b.cport) == f1, "console-cert/-key: that pair is served")
    check(not os.path.exists(os.path.join(b.state, "console", "cert.pem")), "no self-signed pair made")

    # A key that is not the certificate's.
    k = daemon(tmp, "k", img)     # only to make a second pair
    k.start()
    C.stop_checked(k)
    other_key = os.path.join(k.state, "console", "key.pem")
    c = daemon(tmp, "c", img, "console-cert = %s\nconsole-key = %s" % (own_cert, other_key))
    start_fails(c, "the key is not the certificate's")
    d = daemon(tmp, "d", img, "console-cert = %s\nconsole-key = %s" % (own_cert, own_key + ".missing"))
    start_fails(d, "own-key.pem.missing: No such file or directory")
    e = daemon(tmp, "e", img, "console-cert = %s\nconsole-key = %s" % (own_key, own_key))
    start_fails(e, "not a PEM certificate")
    # The console's port taken (by daemon b's console).
    f = daemon(tmp, "f", img)
    f.cport = b.cport
    with open(f.conf) as fh:
        text = fh.read()
    with open(f.conf, "w") as fh:
        fh.write(re.sub(r"console-listen = 127.0.0.1:\d+", "console-listen = 127.0.0.1:%d" % b.cport, text))
    start_fails(f, "Address already in use")
    check(b.alive() and served_fpr(b.cport) == f1, "the daemon holding the port is unaffected")


if __name__ == "__main__":
    sys.exit(main())
