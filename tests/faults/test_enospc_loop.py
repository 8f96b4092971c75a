#!/usr/bin/env python3
"""Fault: the store's real file system fills up.  The state directory is
a small ext4 image on a loop device; pristined runs with --store-floor 0
so the kernel's own ENOSPC reaches the overlays, data and metadata
alike (tests/overlay/test_store_full.py covers the floor, and a tmpfs;
this covers ext4, whose metadata log and checkpoints need new blocks
too).  No fault shim: everything here is real.

- client writes that need new space get CHECK CONDITION, DATA PROTECT,
  SPACE ALLOCATION FAILED WRITE PROTECT (07/27/07), logged;
- while the store is full: reads and overwrites of held blocks work;
  a SYNCHRONIZE CACHE either succeeds or gets 07/27/07 when the metadata
  log itself has no room - never a MEDIUM ERROR, and the overlay never
  enters its error state (it used to: "log append failed: No space left
  on device; writes refused until reopened", until a restart);
- a client reset frees space (in the background); then the full
  client's pending writes flush and new writes work, without a restart;
- the daemon stops cleanly on a full store; after a restart every
  write acknowledged by a successful SYNCHRONIZE CACHE reads back, no
  overlay is taken for corrupt, the reset client reads the golden image;
- the golden image (outside the store) is unchanged.
Needs root, losetup and mkfs.ext4; skips (77) otherwise.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

I = F.I
A, B = "iqn.2024-01.test.faults:ea", "iqn.2024-01.test.faults:eb"
NO_SPACE = (0x07, 0x27, 0x07)
FS_MIB = 40
CHUNK = 128            # blocks per write: 64 KiB


def run(*cmd):
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=60)


def free_kib(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize // 1024


def main():
    why = F.prerequisites()
    if why:
        print(why)
        return F.SKIP
    if os.geteuid() != 0:
        print("needs root (loop device, mount)")
        return F.SKIP
    for tool in ("losetup", "mkfs.ext4", "mount", "umount"):
        if not shutil.which(tool):
            print("%s not installed" % tool)
            return F.SKIP
    check = I.Checker()
    d = F.Daemon(mib=64, state="/nonexistent")   # state set below, on the loop fs
    fsimg = os.path.join(d.tmp, "store.ext4")
    mnt = os.path.join(d.tmp, "store")
    loop = None
    mounted = False
    sess = {}
    model = {A: F.Model(d.golden), B: F.Model(d.golden)}
    try:
        with open(fsimg, "wb") as f:
            f.truncate(FS_MIB << 20)
        r = run("losetup", "--find", "--show", fsimg)
        if r.returncode != 0:
            print("no loop device: %s" % r.stderr.strip())
            return F.SKIP
        loop = r.stdout.strip()
        r = run("mkfs.ext4", "-q", "-F", "-m", "0", loop)
        if r.returncode != 0:
            print("mkfs.ext4 failed: %s" % r.stderr.strip())
            return F.SKIP
        os.mkdir(mnt)
        r = run("mount", "-t", "ext4", loop, mnt)
        if r.returncode != 0:
            print("cannot mount the loop device: %s" % r.stderr.strip())
            return F.SKIP
        mounted = True
        d.state = os.path.join(mnt, "state")
        d.extra = ["--store-floor", "0"]
        d.start(fault_env=False)
        sess[A], sess[B] = d.session(A), d.session(B)
        mark = d.log_mark()

        def do_write(who, lba, data):
            t = F.write(sess[who], lba, data)
            if t.status == 0:
                model[who].wrote(lba, data)
            return t

        def do_sync(who):
            t = F.sync(sess[who])
            if t.status == 0:
                model[who].flushed()
            return t

        def fill():
            problems = []
            full = {}
            for i in range(2 * (FS_MIB << 20) // (CHUNK * F.BS)):     # bounded: 2x the fs
                for who in (A, B):
                    if who in full:
                        continue
                    lba = i * CHUNK
                    t = do_write(who, lba, F.pattern(who[-2:] + "-%d" % i, lba, CHUNK))
                    if t.status != 0:
                        full[who] = lba
                        if t.status != 2 or F.sense_of(t) != NO_SPACE:
                            problems.append("%s: a write on the full store got %s, want 07/27/07"
                                            % (who, F.fmt_sense(t)))
                    if i % 8 == 7 or who in full:
                        t = do_sync(who)
                        if t.status != 0 and F.sense_of(t) != NO_SPACE:
                            problems.append("%s: SYNCHRONIZE CACHE while filling got %s"
                                            % (who, F.fmt_sense(t)))
                if len(full) == 2:
                    break
            print("     full: %s after %s KiB, %s after %s KiB; %d KiB free"
                  % (A[-2:], full.get(A, -1) // 2, B[-2:], full.get(B, -1) // 2, free_kib(mnt)))
            if len(full) != 2:
                problems.append("the store never filled up")
            model[A].full_at = full.get(A, 0)
            return problems

        check.case("fill the store: writes get SPACE ALLOCATION FAILED (07/27/07)", fill)

        def metadata_full():
            """Small overwrites of held blocks, each flushed: the log must
            grow on a file system with no free block."""
            problems = []
            nospace = good = 0
            held = max(CHUNK, model[A].full_at)          # blocks [0, held) are A's
            for k in range(300):
                lba = (k * 8 * 37) % held // 8 * 8
                t = do_write(A, lba, F.pattern("ea-m%d" % k, lba, 8))
                if t.status != 0:
                    problems.append("overwrite of a held block on a full store: %s"
                                    % F.fmt_sense(t))
                    break
                t = do_sync(A)
                if t.status == 0:
                    good += 1
                elif F.sense_of(t) == NO_SPACE:
                    nospace += 1
                else:
                    problems.append("SYNCHRONIZE CACHE on a full store: %s (the overlay failed?)"
                                    % F.fmt_sense(t))
                    break
            print("     %d flushes logged, %d refused for lack of space" % (good, nospace))
            for who in (A, B):
                t = sess[who].read(0, CHUNK)
                if t.status != 0:
                    problems.append("%s: read on a full store: %s" % (who, F.fmt_sense(t)))
            log = d.log_since(mark)
            m = re.search(r"overlay \S+: [a-z ]+ failed: No space left on device", log)
            if m:
                problems.append("an overlay entered its error state for lack of space: %s"
                                % m.group(0))
            if not re.search(r"initiator %s: command 0x2a at LBA \d+ failed: No space left on "
                             r"device; answered DATA PROTECT, SPACE ALLOCATION FAILED" % A, log):
                problems.append("no log line for the refused writes")
            return problems

        check.case("full store: overwrites, reads, flushes go on; no overlay failure",
                   metadata_full)

        def free_space():
            problems = []
            F.close_quietly(sess.pop(B))
            before = free_kib(mnt)
            rc, out = d.ctl("client", "reset", B)
            if rc != 0:
                return ["client reset of %s failed: %r" % (B, out)]
            model[B] = F.Model(d.golden)
            deadline = time.monotonic() + 30
            while free_kib(mnt) < before + 8192 and time.monotonic() < deadline:
                time.sleep(0.2)
            print("     free after the reset: %d KiB (was %d)" % (free_kib(mnt), before))
            t = do_sync(A)
            if t.status != 0:
                problems.append("SYNCHRONIZE CACHE after space was freed: %s" % F.fmt_sense(t))
            lba = 100000
            t = do_write(A, lba, F.pattern("ea-after", lba, CHUNK))
            t2 = do_sync(A)
            if t.status != 0 or t2.status != 0:
                problems.append("new write after space was freed: %s / %s (a restart should not "
                                "be needed)" % (F.fmt_sense(t), F.fmt_sense(t2)))
            return problems

        check.case("space freed by a reset: flushes and new writes work without a restart",
                   free_space)

        def refill_and_restart():
            problems = []
            for i in range(400):                 # fill again, bounded
                lba = 120000 - (i + 1) * CHUNK
                if do_write(A, lba, F.pattern("ea-r%d" % i, lba, CHUNK)).status != 0:
                    break
                do_sync(A)
            F.close_quietly(*sess.values())
            sess.clear()
            mark2 = d.log_mark()
            problems += d.stop()
            if "overlay closed with an error" in d.log_since(mark2):
                problems.append("an overlay closed with an error on a full store")
            d.start(fault_env=False)
            problems += model[A].check(d, A)
            # B's reset left it without an overlay, and a new one needs a
            # few blocks the full store does not have: its login is
            # refused with 0x0302 (out of resources: try later), logged,
            # until space is freed.
            try:
                problems += model[B].check(d, B)
            except I.LoginFailed as e:
                if (e.status_class, e.status_detail) != (3, 2):
                    problems.append("%s refused with 0x%02x%02x on a full store, expected 0x0302"
                                    % (B, e.status_class, e.status_detail))
                if not re.search(r"cannot open the overlay of %s: No space left on device \(the "
                                 r"state directory's file system is full" % B,
                                 d.log(since_start=True)):
                    problems.append("%s: %s, and no log line saying why" % (B, e))
                else:
                    print("     %s cannot log in while the store is full (no room for a new "
                          "overlay): refused with 0x0302, logged" % B)
            if "cannot be trusted" in d.log(since_start=True):
                problems.append("an overlay was taken for corrupt")
            problems += d.stop()
            return problems

        check.case("stop on a full store, restart: every synced write intact",
                   refill_and_restart)
        check.case("golden image unchanged",
                   lambda: [] if F.sha256_file(d.image) == d.golden_sha else ["golden changed"])
    finally:
        F.close_quietly(*sess.values())
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)
        if mounted:
            for _ in range(10):
                if run("umount", mnt).returncode == 0:
                    break
                time.sleep(0.5)
        if loop:
            run("losetup", "-d", loop)
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
