#!/usr/bin/env python3
"""sd_notify readiness of pristined (systemd Type=notify), without systemd.

The test plays systemd's part: it binds a Unix datagram socket of its own,
starts build/asan/pristined in quick mode with NOTIFY_SOCKET naming it (and
the boot endpoint on, when this pristined has --boot-listen), and checks
  - READY=1 arrives, from the daemon's own PID (NotifyAccess=main);
  - at the moment it arrives the iSCSI port, the admin socket and the boot
    endpoint all accept connections: before them would let systemd start
    units that need pristine too early, and the test checks only after the
    datagram is read, so "accepts" is what READY=1 promises;
  - STOPPING=1 follows SIGTERM, once main.c calls notify_stopping();
  - the daemon exits 0 with no sanitizer report.
Exit 0 pass, 1 fail, 77 skip: when READY=1 never comes and src/daemon/main.c
does not call notify_ready() yet (the wiring is the lead's, see notify.h).
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
PRISTINED = os.environ.get("PRISTINED", os.path.join(BUILD, "asan", "pristined"))
READY_WAIT = 30   # seconds for READY=1
STOP_WAIT = 30    # seconds for the daemon to exit after SIGTERM


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def skip(msg):
    print(msg)
    sys.exit(77)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tcp_accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False


def unix_accepts(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def recv_notify(sock, timeout):
    """One datagram as (text, sender pid), or (None, None) on timeout."""
    sock.settimeout(timeout)
    try:
        data, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        return None, None
    pid = None
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS and len(payload) >= 12:
            pid = struct.unpack("iII", payload[:12])[0]
    return data.decode("utf-8", "replace"), pid


def wiring(name):
    try:
        with open(os.path.join(TOP, "src", "daemon", "main.c")) as f:
            return name in f.read()
    except OSError:
        return False


def main():
    if not os.access(PRISTINED, os.X_OK):
        skip("%s not built (make asan)" % PRISTINED)
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
    helptext = subprocess.run([PRISTINED, "--help"], capture_output=True, text=True,
                              env=env, timeout=30).stdout
    with tempfile.TemporaryDirectory(prefix="pristine-notify.") as tmp:
        img = os.path.join(tmp, "disk.raw")
        with open(img, "wb") as f:
            f.truncate(8 << 20)
        state = os.path.join(tmp, "state")
        notify_path = os.path.join(tmp, "notify.sock")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(notify_path)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        port = free_port()
        args = [PRISTINED, "--image", img, "--listen", "127.0.0.1:%d" % port, "--state", state]
        boot_port = None
        if "--boot-listen" in helptext:
            boot_port = free_port()
            args += ["--boot-listen", "127.0.0.1:%d" % boot_port]
        env["NOTIFY_SOCKET"] = notify_path
        log_path = os.path.join(tmp, "pristined.log")
        logf = open(log_path, "wb")
        print("starting:", " ".join(args))
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=logf,
                                stderr=subprocess.STDOUT, env=env)

        def log():
            with open(log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")

        try:
            ready = None
            messages = []
            deadline = time.monotonic() + READY_WAIT
            while time.monotonic() < deadline and ready is None:
                text, pid = recv_notify(sock, max(0.1, deadline - time.monotonic()))
                if text is None:
                    break
                messages.append((text, pid))
                if "READY=1" in text.split("\n"):
                    # Check at once, before anything else can change.
                    ready = (text, pid, tcp_accepts(port), unix_accepts(
                        os.path.join(state, "pristined.sock")),
                        tcp_accepts(boot_port) if boot_port else None)
                if proc.poll() is not None:
                    break
            print("notifications before READY:", messages)
            if ready is None:
                alive = proc.poll() is None
                if not wiring("notify_ready"):
                    skip("READY=1 never came: src/daemon/main.c does not call notify_ready() "
                         "yet (to be wired after the portals are bound)")
                print(log())
                fail("no READY=1 within %d s (daemon %s)" %
                     (READY_WAIT, "running" if alive else "exited %s" % proc.returncode))
            text, pid, iscsi_ok, api_ok, boot_ok = ready
            print("READY datagram: %r from pid %s" % (text, pid))
            if pid != proc.pid:
                fail("READY=1 came from pid %s, not the daemon's %d" % (pid, proc.pid))
            if not iscsi_ok:
                fail("READY=1 arrived before the iSCSI port 127.0.0.1:%d accepted" % port)
            if not api_ok:
                fail("READY=1 arrived before the admin socket accepted")
            if boot_port and not boot_ok:
                fail("READY=1 arrived before the boot endpoint 127.0.0.1:%d accepted" % boot_port)
            print("OK: at READY=1 the iSCSI port, the admin socket%s accept" %
                  (" and the boot endpoint" if boot_port else ""))
            # Only one READY=1: drain what else came, then stop.
            proc.terminate()
            stopping = False
            deadline = time.monotonic() + STOP_WAIT
            while time.monotonic() < deadline:
                text, _ = recv_notify(sock, 0.2)
                if text is not None:
                    print("after SIGTERM:", repr(text))
                    if "READY=1" in text.split("\n"):
                        fail("a second READY=1 after SIGTERM")
                    stopping |= "STOPPING=1" in text.split("\n")
                elif proc.poll() is not None:
                    break
            try:
                rc = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                fail("pristined did not exit within %d s of SIGTERM" % STOP_WAIT)
            out = log()
            if "Sanitizer" in out or "runtime error:" in out:
                print(out)
                fail("sanitizer report in the daemon's log")
            if rc != 0:
                print(out)
                fail("pristined exited with status %d" % rc)
            if wiring("notify_stopping"):
                if not stopping:
                    fail("no STOPPING=1 after SIGTERM although main.c calls notify_stopping()")
                print("OK: STOPPING=1 after SIGTERM")
            else:
                print("STOPPING=1 not checked: main.c does not call notify_stopping() yet")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            logf.close()
            sock.close()
    print("PASS")


if __name__ == "__main__":
    main()
