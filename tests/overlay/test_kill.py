#!/usr/bin/env python3
"""Crash test: SIGKILL the daemon at random moments while a client writes.

A client writes random runs of 512-byte blocks (each block's content names
the write that produced it), issues SYNCHRONIZE CACHE every few writes and
sometimes writes with FUA.  A timer kills pristined with SIGKILL at a random
moment.  After each restart, for every block the client ever touched, the
content must be either the last value made durable (by a completed flush
or an acknowledged FUA write; the golden content before any) or a value
written after that - never anything else, never a mix.  At least 20
rounds; the golden image's SHA-256 must never change.  Exit 0/1/77.
"""
import hashlib
import shutil
import tempfile
import os
import random
import signal
import sys
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

ROUNDS = int(os.environ.get("KILL_ROUNDS", "24"))
MIB = 8
BS = 512
SPAN = 4096                      # blocks the workload touches (2 MiB)
INIT = "iqn.2024-01.test.pristine:crash"
TARGET = "iqn.2026-11.org.pristine:golden"


def block_value(rnd_tag, lba):
    """512 bytes naming the write (tag) and the block."""
    head = b"W%016x-%08d-" % (rnd_tag, lba)
    return (head * (BS // len(head) + 1))[:BS]


def main():
    binary = os.environ.get("PRISTINED", os.path.join(I.TOP, "build", "asan", "pristined"))
    if not os.access(binary, os.X_OK):
        print("%s not built" % binary)
        return 77
    tmp = tempfile.mkdtemp(prefix="pristine-kill.")
    image = os.path.join(tmp, "golden.img")
    golden = I.image_bytes(MIB)
    with open(image, "wb") as f:
        f.write(golden)
    sha0 = hashlib.sha256(golden).hexdigest()
    state = os.path.join(tmp, "state")
    log = open(os.path.join(tmp, "pristined.log"), "ab")
    rnd = random.Random(2026)
    # durable[b]: value a crash may not lose; pending[b]: values written since.
    durable = {}
    pending = {}
    problems = []
    kills = checked = flushes = 0
    proc = None
    try:
        for rnd_no in range(ROUNDS):
            port = I.free_port()
            proc = I.start_quick(binary, image, state, port, log)
            s = I.Session("127.0.0.1", port, INIT, target_name=TARGET, lun=0, timeout=10)
            s.login()
            # 1. verify everything touched so far
            for b in sorted(set(durable) | set(pending)):
                t = s.read(b, 1)
                got = bytes(t.data)
                allowed = {durable.get(b, golden[b * BS:(b + 1) * BS])} | pending.get(b, set())
                checked += 1
                if got not in allowed:
                    problems.append("round %d: LBA %d holds %r..., neither its durable value nor one "
                                    "written after it" % (rnd_no, b, got[:28]))
            if problems:
                s.close()
                break
            # What survived is on disk now; make it durable before going on.
            I.sync_cache(s)
            for b in list(pending):
                t = s.read(b, 1)
                durable[b] = bytes(t.data)
            pending.clear()
            # 2. write until killed
            delay = rnd.uniform(0.15, 1.2)
            killer = threading.Timer(delay, lambda p=proc: p.send_signal(signal.SIGKILL))
            killer.start()
            tag = rnd_no << 32
            since_flush = []
            try:
                for i in range(100000):
                    r = rnd.random()
                    if r < 0.12:
                        I.sync_cache(s)
                        flushes += 1
                        for b, v in since_flush:
                            durable[b] = v
                            pending.pop(b, None)
                        since_flush = []
                        continue
                    n = rnd.randint(1, 16)
                    lba = rnd.randrange(0, SPAN - n)
                    tag += 1
                    data = b"".join(block_value(tag, lba + k) for k in range(n))
                    # Record before sending: an unacknowledged write may land too.
                    for k in range(n):
                        pending.setdefault(lba + k, set()).add(data[k * BS:(k + 1) * BS])
                    fua = r > 0.95
                    cdb = bytearray(I.cdb_write10(lba, n))
                    if fua:
                        cdb[1] |= 0x08
                    t = s.command(bytes(cdb), write_data=data)
                    if t.status != 0:
                        raise I.ISCSIError("WRITE status %r" % t.status)
                    for k in range(n):
                        v = data[k * BS:(k + 1) * BS]
                        if fua:
                            durable[lba + k] = v
                            # Older pending values of this block may no longer appear.
                            pending[lba + k] = set()
                        # A later flush makes the newest value durable, FUA or not.
                        since_flush.append((lba + k, v))
            except (I.ISCSIError, OSError):
                pass
            killer.join()
            print('round %d: killed after %.2fs, %d writes since the last flush' % (rnd_no, delay, len(since_flush)), flush=True)
            s.close()
            proc.wait(10)
            kills += 1
            proc = None
        if proc is not None:
            proc.kill()
            proc.wait(10)
            proc = None
        with open(image, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() != sha0:
                problems.append("the golden image changed")
        # A last clean start and stop: the overlay opens and closes cleanly.
        port = I.free_port()
        proc = I.start_quick(binary, image, state, port, log)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
        proc = None
        if rc != 0:
            problems.append("pristined exit status %d after the last round" % rc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        log.close()
    text = open(os.path.join(tmp, "pristined.log"), "rb").read().decode("utf-8", "replace")
    for bad in ("ERROR: AddressSanitizer", "runtime error:", "cannot be trusted"):
        if bad in text:
            problems.append("log contains %r" % bad)
    print("%d SIGKILL rounds, %d flushes, %d block checks" % (kills, flushes, checked))
    if problems:
        print("kept", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print("FAIL: " + p)
    if not problems and kills < 20:
        print("FAIL: only %d rounds" % kills)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
