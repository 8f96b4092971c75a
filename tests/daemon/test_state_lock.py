#!/usr/bin/env python3
"""One pristined per state directory (issue 19 item 1).

Daemon A serves STATE while a PC writes through it.  Daemon B is started
on the same STATE (other ports, as an admin would start one by hand next
to systemd's): it must exit at once with status 1 and a message naming
A's PID, before it verifies, prints or moves anything.  Afterwards:
quarantine/ and trash/ are as they were, the overlay's files are the same
files (same inodes; their contents only changed through A), clients.json
and every image.json are byte for byte what they were, and every write A
acknowledged reads back.  Then A is killed with SIGKILL: its lock file
stays behind, naming a dead PID, and must not stop daemon C from starting
on the same STATE and finding every acknowledged write.  Exit 0/1/77.
"""
import hashlib
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

MIB = 8
BS = 512
SPAN = 4096
INIT = "iqn.2024-01.test.pristine:lockpc"
TARGET = "iqn.2026-11.org.pristine:golden"
WRITES = 3000                    # the writer's bound


def block_value(tag, lba):
    head = b"L%08d-%08d-" % (tag, lba)
    return (head * (BS // len(head) + 1))[:BS]


def tree(path):
    """{relative path: (inode, is_dir)} of everything below path."""
    out = {}
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            full = os.path.join(root, n)
            st = os.lstat(full)
            out[os.path.relpath(full, path)] = (st.st_ino, stat.S_ISDIR(st.st_mode))
    return out


def digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def meta_files(state):
    """Hash of clients.json and of every image.json: nothing but A writes them."""
    out = {"clients.json": digest(os.path.join(state, "clients.json"))}
    for root, _, files in os.walk(os.path.join(state, "images")):
        for n in files:
            if n == "image.json":
                full = os.path.join(root, n)
                out[os.path.relpath(full, state)] = digest(full)
    return out


class Writer(threading.Thread):
    """Writes WRITES runs of blocks through s, recording what was acknowledged."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s = s
        self.acked = {}
        self.error = None
        self.stop = threading.Event()
        self.count = 0

    def run(self):
        rnd = random.Random(19)
        try:
            for tag in range(1, WRITES + 1):
                if self.stop.is_set():
                    break
                n = rnd.randint(1, 8)
                lba = rnd.randrange(0, SPAN - n)
                data = b"".join(block_value(tag, lba + k) for k in range(n))
                self.s.write(lba, data)
                for k in range(n):
                    self.acked[lba + k] = data[k * BS:(k + 1) * BS]
                self.count += 1
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            self.error = e


def check_readback(s, acked, who, problems):
    bad = 0
    for b in sorted(acked):
        got = bytes(s.read(b, 1).data)
        if got != acked[b]:
            bad += 1
            if bad <= 3:
                problems.append("%s: LBA %d does not hold its acknowledged write" % (who, b))
    if bad:
        problems.append("%s: %d of %d written blocks lost" % (who, bad, len(acked)))


def main():
    binary = os.environ.get("PRISTINED", os.path.join(I.TOP, "build", "asan", "pristined"))
    if not os.access(binary, os.X_OK):
        print("%s not built" % binary)
        return 77
    tmp = tempfile.mkdtemp(prefix="pristine-lock.")
    image = os.path.join(tmp, "golden.img")
    with open(image, "wb") as f:
        f.write(I.image_bytes(MIB))
    state = os.path.join(tmp, "state")
    log_a = open(os.path.join(tmp, "a.log"), "ab")
    log_b = open(os.path.join(tmp, "b.log"), "ab")
    log_c = open(os.path.join(tmp, "c.log"), "ab")
    problems = []
    procs = []
    try:
        port_a = I.free_port()
        a = I.start_quick(binary, image, state, port_a, log_a)
        procs.append(a)
        s = I.Session("127.0.0.1", port_a, INIT, target_name=TARGET, lun=0, timeout=10)
        s.login()
        # The overlay exists and the login is recorded before the snapshot.
        s.write(0, block_value(0, 0))
        I.sync_cache(s)
        lock = os.path.join(state, "pristined.lock")
        st = os.stat(lock)
        if stat.S_IMODE(st.st_mode) != 0o600:
            problems.append("lock file mode %o, not 600" % stat.S_IMODE(st.st_mode))
        if open(lock).read().strip() != str(a.pid):
            problems.append("lock file holds %r, not A's PID %d" % (open(lock).read(), a.pid))
        before = {sub: tree(os.path.join(state, sub)) for sub in ("quarantine", "trash", "overlays", "images")}
        meta_before = meta_files(state)
        top_before = sorted(os.listdir(state))

        w = Writer(s)
        w.start()
        while w.count < 50 and w.is_alive():
            time.sleep(0.01)
        # B: same STATE, other ports, while the PC writes.
        port_b = I.free_port()
        t0 = time.monotonic()
        b = I.start_quick(binary, image, state, port_b, log_b, wait=False)
        procs.append(b)
        try:
            rc_b = b.wait(15)
        except subprocess.TimeoutExpired:
            rc_b = None
        took = time.monotonic() - t0
        writes_during_b = w.count
        w.join(120)
        if w.is_alive():
            problems.append("the writer did not finish")
        if w.error:
            problems.append("a write through A failed: %r" % w.error)
        out_b = open(log_b.name, "rb").read().decode("utf-8", "replace")
        if rc_b is None:
            problems.append("B is still running on a state directory A holds")
            b.kill()
            b.wait(10)
        elif rc_b != 1:
            problems.append("B exited with status %d, not 1" % rc_b)
        if "in use" not in out_b or "PID %d" % a.pid not in out_b:
            problems.append("B's message does not name A's PID %d: %r" % (a.pid, out_b[-600:]))
        for word in ("target iqn", "listening", "admin API", "quarantine", "cannot be trusted"):
            if word in out_b:
                problems.append("B got as far as %r before stopping" % word)
        print("B exited with %r after %.2fs; the writer had done %d of %d writes by then"
              % (rc_b, took, writes_during_b, WRITES), flush=True)
        if a.poll() is not None:
            problems.append("A died (status %r)" % a.returncode)

        # Nothing moved, nothing quarantined, nothing rewritten.
        for sub, old in before.items():
            new = tree(os.path.join(state, sub))
            if new != old:
                problems.append("%s/ changed while B ran: %r -> %r" % (sub, sorted(old), sorted(new)))
        if meta_files(state) != meta_before:
            problems.append("clients.json or an image.json changed while B ran")
        if sorted(os.listdir(state)) != top_before:
            problems.append("STATE's top level changed: %r -> %r" % (top_before, sorted(os.listdir(state))))
        if open(lock).read().strip() != str(a.pid):
            problems.append("B rewrote the lock file: %r" % open(lock).read())

        # Every acknowledged write reads back through A ...
        I.sync_cache(s)
        acked = {0: block_value(0, 0)}
        acked.update(w.acked)
        check_readback(s, acked, "A", problems)
        s.close()
        # ... and after A dies with SIGKILL (its lock file left behind), C starts.
        a.send_signal(signal.SIGKILL)
        a.wait(10)
        port_c = I.free_port()
        c = I.start_quick(binary, image, state, port_c, log_c)
        procs.append(c)
        s = I.Session("127.0.0.1", port_c, INIT, target_name=TARGET, lun=0, timeout=10)
        s.login()
        check_readback(s, acked, "C after A's SIGKILL", problems)
        s.close()
        if open(lock).read().strip() != str(c.pid):
            problems.append("C did not record its PID in the lock file")
        if os.listdir(os.path.join(state, "quarantine")):
            problems.append("C quarantined %r" % os.listdir(os.path.join(state, "quarantine")))
        c.send_signal(signal.SIGTERM)
        rc_c = c.wait(20)
        if rc_c != 0:
            problems.append("C exited with status %d" % rc_c)
    except (I.ISCSIError, OSError) as e:
        problems.append("error: %r" % e)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for f in (log_a, log_b, log_c):
            f.close()
    for name in ("a.log", "b.log", "c.log"):
        text = open(os.path.join(tmp, name), "rb").read().decode("utf-8", "replace")
        for bad in ("ERROR: AddressSanitizer", "runtime error:"):
            if bad in text:
                problems.append("%s contains %r" % (name, bad))
    if problems:
        print("kept", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
