#!/usr/bin/env python3
"""Cluster faults seen through iSCSI by a PC whose overlay is kept in Ceph
(issue 14; storage/ovl_ceph.h: its data in a plain RBD image, its map in
RADOS objects), driven by tests/ceph/test_rbd_full.sh and test_rbd_osd.sh,
which start the cluster and pristined and inject the faults by commands
given here.  Each phase prints what the initiator saw; exit 0, 1 or 77.

  rbd_faults.py full PORT GOLDEN "FILL-CMD" "FREE-CMD"
      pc1 writes and flushes; FILL-CMD makes the pool full: within 30 s a
      WRITE answers CHECK CONDITION, DATA PROTECT / SPACE ALLOCATION
      FAILED WRITE PROTECT (07/27/07) - a write to a new block (the
      overlay's -ENOSPC for new space) and an overwrite of one it holds
      (refused or taken) - and reads go on with the
      right data; after FREE-CMD writes succeed again within 30 s and
      the whole disk reads what was acknowledged (the refused writes
      changed nothing).
  rbd_faults.py osd PORT GOLDEN "STOP-CMD" "CONT-CMD" SECONDS BOUND PC wait|error
      PC writes, flushes and reads back in a loop; STOP-CMD stops the OSD
      for SECONDS, then CONT-CMD starts it again.  Every command either
      succeeds with the right data or fails with CHECK CONDITION; none
      takes longer than BOUND seconds; wrong data is a failure.  wait:
      no command fails (the daemon waits for the cluster); error: some
      command fails (ceph-op-timeout), and the PC logs in again after a
      failure, as an initiator recovering would.  Afterwards reads and
      writes succeed and the whole disk is checked.
"""
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import faultlib as F  # noqa: E402
from faultlib import I  # noqa: E402

PC = "iqn.2024-01.test.pristine:pc1"       # the full phase's PC
OBJ = 65536                      # the spacing of the writes: each a new block of the overlay


def session(port, timeout, name=PC):
    s = I.Session("127.0.0.1", port, name, target_name=F.TARGET, lun=0, timeout=timeout)
    s.login()
    s.ready()
    return s


def blocks(byte, n=8):
    return bytes([byte]) * (n * F.BS)


def check_disk(s, model, problems, what, maybe=None):
    """Read the whole disk through s and compare with model (committed,
    or a pending write's content, or a failed write's in maybe)."""
    maybe = {k: set(v) for k, v in (maybe or {}).items()}
    for lba, data in model.pending:
        for k in range(len(data) // F.BS):
            maybe.setdefault(lba + k, set()).add(data[k * F.BS:(k + 1) * F.BS])
    nblocks = len(model.committed) // F.BS
    for lba in range(0, nblocks, 512):
        n = min(512, nblocks - lba)
        t = s.read(lba, n)
        if t.status != 0:
            problems.append("%s: READ at %d: %s" % (what, lba, F.fmt_sense(t)))
            return
        got, want = bytes(t.data), model.committed[lba * F.BS:(lba + n) * F.BS]
        if got == want:
            continue
        for k in range(n):
            g = got[k * F.BS:(k + 1) * F.BS]
            if g != want[k * F.BS:(k + 1) * F.BS] and g not in maybe.get(lba + k, ()):
                problems.append("%s: LBA %d reads neither what was acknowledged nor a pending "
                                "write" % (what, lba + k))
                return
    print("    ok: %s: the whole disk reads what was acknowledged" % what)


def phase_full(port, golden, fill, free):
    problems = []
    model = F.Model(golden)
    s = session(port, 60)
    spb = OBJ // F.BS            # blocks per object
    # two held objects: 0 and 1
    for lba, b in ((0, 0x11), (spb, 0x12)):
        t = F.write(s, lba, blocks(b))
        assert t.status == 0, F.fmt_sense(t)
        model.wrote(lba, blocks(b))
    assert F.sync(s).status == 0
    model.flushed()
    subprocess.run(fill, shell=True, check=True, timeout=60)
    # the monitors mark the pool full within a few seconds: then 07/27/07
    t0 = time.monotonic()
    seen = None
    nxt = 10
    while time.monotonic() - t0 < 30:
        lba = nxt * spb
        nxt += 1
        c0 = time.monotonic()
        t = F.write(s, lba, blocks(0x21))
        dt = time.monotonic() - c0
        if dt > 5:
            problems.append("a WRITE on a filling pool took %.1f s" % dt)
        if t.status == 0:
            model.wrote(lba, blocks(0x21))   # went through before the flag: it counts
            if F.sync(s).status == 0:
                model.flushed()
            time.sleep(0.3)
            continue
        seen = F.sense_of(t)
        if seen != (0x07, 0x27, 0x07):
            problems.append("a WRITE on a full pool: %s, not 07/27/07" % F.fmt_sense(t))
        else:
            print("    ok: a WRITE to a new block on a full pool: CHECK CONDITION 07/27/07 "
                  "after %.1f s, answered in %.2f s" % (time.monotonic() - t0, dt))
        break
    if seen is None:
        problems.append("no WRITE refused within 30 s of the pool filling")
        return problems
    # an overwrite of a held object: refused the same way, nothing changed
    t = F.write(s, 0, blocks(0x31))
    if t.status == 0:
        model.wrote(0, blocks(0x31))
        print("    note: an overwrite of a held block went through on the full pool")
    elif F.sense_of(t) != (0x07, 0x27, 0x07):
        problems.append("an overwrite on a full pool: %s, not 07/27/07" % F.fmt_sense(t))
    else:
        print("    ok: an overwrite of a held block on a full pool: 07/27/07")
    t = F.sync(s)
    print("    SYNCHRONIZE CACHE on the full pool: %s" % ("GOOD" if t.status == 0 else F.fmt_sense(t)))
    if t.status == 0:
        model.flushed()
    check_disk(s, model, problems, "full pool")
    subprocess.run(free, shell=True, check=True, timeout=60)
    t0 = time.monotonic()
    ok = False
    while time.monotonic() - t0 < 30:
        t = F.write(s, nxt * spb, blocks(0x41))
        model.wrote(nxt * spb, blocks(0x41))
        if t.status == 0:
            ok = True
            break
        time.sleep(0.5)
    if not ok:
        problems.append("writes still refused 30 s after space came back: %s" % F.fmt_sense(t))
        return problems
    print("    ok: writes work again %.1f s after space came back" % (time.monotonic() - t0))
    for lba, b in ((0, 0x51), ((nxt + 3) * spb, 0x52)):
        t = F.write(s, lba, blocks(b))
        if t.status != 0:
            problems.append("WRITE after space came back: %s" % F.fmt_sense(t))
        model.wrote(lba, blocks(b))
    if F.sync(s).status != 0:
        problems.append("SYNCHRONIZE CACHE after space came back failed")
    model.flushed()
    check_disk(s, model, problems, "space back")
    F.close_quietly(s)
    # a new session (a fresh login) reads the same: the overlay is whole
    s = session(port, 60)
    check_disk(s, model, problems, "new session")
    F.close_quietly(s)
    return problems


def phase_osd(port, golden, stop, cont, seconds, bound, name, expect):
    problems = []
    model = F.Model(golden)
    cur = {"s": session(port, bound, name)}
    stats = {"ok": 0, "failed": 0, "slowest": 0.0, "senses": set()}
    done = threading.Event()
    lost = []
    failed = {}                  # lba -> contents of refused writes (may have landed)

    def io():
        tag = 0
        while not done.is_set():
            s = cur["s"]
            tag += 1
            lba = (tag * 37) % 4000
            data = F.pattern("t%d" % tag, lba, 4)
            c0 = time.monotonic()
            try:
                t = F.write(s, lba, data)
                if t.status == 0:
                    t = F.sync(s)
                if t.status == 0:
                    model.wrote(lba, data)
                    model.flushed()
                    for k in range(4):      # a refused write landing now would be wrong data
                        failed.pop(lba + k, None)
                    t = s.read(lba, 4)
                else:
                    for k in range(4):
                        failed.setdefault(lba + k, set()).add(data[k * F.BS:(k + 1) * F.BS])
                    if t.status == 0 and bytes(t.data) != data:
                        problems.append("WRONG DATA: LBA %d read back other bytes than just written" % lba)
            except (I.ISCSIError, OSError) as e:
                for k in range(4):
                    failed.setdefault(lba + k, set()).add(data[k * F.BS:(k + 1) * F.BS])
                lost.append("%s after %.1f s" % (str(e).splitlines()[0], time.monotonic() - c0))
                return
            dt = time.monotonic() - c0
            stats["slowest"] = max(stats["slowest"], dt)
            if dt > bound:
                problems.append("a command took %.1f s (bound %.0f s)" % (dt, bound))
            if t.status == 0:
                stats["ok"] += 1
            else:
                stats["failed"] += 1
                stats["senses"].add(F.fmt_sense(t))
                if expect == "error":   # recover: a new login (reopens a failed overlay)
                    F.close_quietly(s)
                    try:
                        cur["s"] = session(port, bound, name)
                    except (I.ISCSIError, OSError) as e:
                        lost.append("relogin: %s" % str(e).splitlines()[0])
                        return
            time.sleep(0.02)

    th = threading.Thread(target=io)
    th.start()
    time.sleep(1.0)
    before = stats["ok"]
    subprocess.run(stop, shell=True, check=True, timeout=30)
    t0 = time.monotonic()
    time.sleep(seconds)
    subprocess.run(cont, shell=True, check=True, timeout=120)
    print("    the OSD was stopped for %.1f s" % (time.monotonic() - t0))
    time.sleep(3.0)
    done.set()
    th.join(bound + 30)
    if th.is_alive():
        problems.append("a command did not finish within its bound")
        return problems
    print("    while the OSD was stopped: %d commands succeeded (%d before the stop), %d failed %s; "
          "slowest %.1f s%s" % (stats["ok"], before, stats["failed"], sorted(stats["senses"]),
                               stats["slowest"], "; session lost: " + lost[0] if lost else ""))
    if stats["ok"] <= before:
        problems.append("no command succeeded after the OSD came back")
    if expect == "wait" and (stats["failed"] or lost):
        problems.append("commands failed though the daemon should wait for the cluster")
    if expect == "error" and not stats["failed"]:
        problems.append("no command failed though OSD requests time out")
    F.close_quietly(cur["s"])
    # afterwards: a session reads and writes, and the disk is what was acknowledged
    s = session(port, 60, name)
    t = F.write(s, 5000, blocks(0x77))
    if t.status != 0 or F.sync(s).status != 0:
        problems.append("WRITE after the OSD came back: %s" % F.fmt_sense(t))
    model.wrote(5000, blocks(0x77))
    model.flushed()
    check_disk(s, model, problems, "after the OSD came back", failed)
    F.close_quietly(s)
    return problems


def main():
    phase, port, golden_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(golden_path, "rb") as f:
        golden = f.read()
    try:
        if phase == "full":
            problems = phase_full(port, golden, sys.argv[4], sys.argv[5])
        elif phase == "osd":
            problems = phase_osd(port, golden, sys.argv[4], sys.argv[5], float(sys.argv[6]),
                                 float(sys.argv[7]), sys.argv[8], sys.argv[9])
        else:
            print("unknown phase %s" % phase)
            return 2
    except (I.ISCSIError, OSError, AssertionError, subprocess.SubprocessError) as e:
        problems = ["%s: %s" % (type(e).__name__, e)]
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
