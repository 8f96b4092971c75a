#!/usr/bin/env python3
"""kill -9 of pristined while PCs write to their overlays on Ceph RBD
(issue 14), driven by tests/ceph/test_rbd_kill.sh, which starts the
cluster, imports the golden and writes the daemon's configuration.

  rbd_kill.py CONF GOLDEN STATE PORT CEPH_CONF POOL

Rounds: pristined -c CONF starts; each PC logs in - from the second
round on, after a kill -9, within SERVE_BOUND seconds of the start (the
restarted daemon breaks its dead predecessor's exclusive locks instead
of waiting out their watches, ~30 s: rbd_disk.h); each PC's whole disk
is checked with tests/faults/faultlib.py's Model (every write a
successful SYNCHRONIZE CACHE covered reads back; a write since then
reads old or new, nothing else); then two PCs write and flush at once
until a timer kills the daemon with SIGKILL at a random moment.

Then the lock of a live other client: a second client (rbd_lock_holder)
takes the lock of pc1's overlay's data image (DIR.INST.data, storage/
ovl_ceph.h; pc1 first wrote and flushed its first 4 KiB, so that its
overlay's map points there) while no daemon runs; the daemon, started, does
not serve pc1 (its login or its first command fails within a bound) and
the holder is still the owner afterwards and writes (neither broken nor
blocklisted); pc2 is served meanwhile; once the holder is gone, pc1 is
served again and reads the holder's write.  Exit 0, 1 or 77.
"""
import os
import random
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import faultlib as F  # noqa: E402
from faultlib import I  # noqa: E402

ROUNDS = int(os.environ.get("RBD_KILL_ROUNDS", "8"))
SERVE_BOUND = 10.0               # seconds from a restart to a PC's login
SPAN = 4096                      # blocks the writers touch (2 MiB)
PCS = ["iqn.2024-01.test.pristine:pc1", "iqn.2024-01.test.pristine:pc2"]
HOLDER = os.path.join(F.BUILD, "asan", "rbd_lock_holder")


class RbdDaemon(F.Daemon):
    """faultlib's Daemon, started from a configuration file (an image on
    RBD) instead of --image, without the fault shim."""

    def __init__(self, conf, golden, state, port):
        super().__init__(image=golden, state=state)
        self.conf = conf
        self.port = port

    def argv(self):
        return [F.PRISTINED, "-c", self.conf]

    def start(self, timeout=30.0, fault_env=False):
        return super().start(timeout, fault_env)

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(20)
        self.logf.close()
        self.proc = None


def pattern(tag, lba, n):
    """n blocks naming the write (tag) and each block."""
    out = []
    for k in range(n):
        head = b"K%016x-%08d-" % (tag, lba + k)
        out.append((head * (F.BS // len(head) + 1))[:F.BS])
    return b"".join(out)


def writer(d, name, model, rnd, tag0, stats):
    """Write and flush as name until the daemon dies (an error ends it)."""
    s = None
    tag = tag0
    try:
        s = d.session(name, timeout=10)
        while True:
            if rnd.random() < 0.12:
                t = F.sync(s)
                if t.status != 0:
                    return
                model.flushed()
                stats["flushes"] += 1
                continue
            n = rnd.randint(1, 16)
            lba = rnd.randrange(0, SPAN - n)
            tag += 1
            data = pattern(tag, lba, n)
            model.wrote(lba, data)       # before sending: an unacknowledged write may land
            t = F.write(s, lba, data)
            if t.status != 0:
                return
            stats["writes"] += 1
    except (I.ISCSIError, OSError):
        pass
    finally:
        F.close_quietly(s)


def settle(d, name, model):
    """Make what survived durable and take it as the committed content."""
    s = d.session(name)
    try:
        t = F.sync(s)
        if t.status != 0:
            return ["%s: SYNCHRONIZE CACHE after restart: %s" % (name, F.fmt_sense(t))]
        nblocks = len(model.committed) // F.BS
        for lba in range(0, nblocks, 512):
            t = s.read(lba, min(512, nblocks - lba))
            if t.status != 0:
                return ["%s: READ at %d: %s" % (name, lba, F.fmt_sense(t))]
            model.committed[lba * F.BS:lba * F.BS + len(t.data)] = bytes(t.data)
        model.pending = []
    finally:
        F.close_quietly(s)
    return []


def login_time(d, name):
    """Seconds from now until name's session is up (raises on failure)."""
    t0 = time.monotonic()
    s = d.session(name, timeout=40)
    F.close_quietly(s)
    return time.monotonic() - t0


def kill_rounds(d, golden, problems):
    models = {n: F.Model(golden) for n in PCS}
    rnd = random.Random(1414)
    stats = {"writes": 0, "flushes": 0}
    worst = 0.0
    for no in range(ROUNDS):
        t0 = time.monotonic()
        d.start()
        for n in PCS:
            login_time(d, n)
        served = time.monotonic() - t0
        if no > 0:
            worst = max(worst, served)
            if served > SERVE_BOUND:
                problems.append("round %d: the PCs were served %.1f s after the restart "
                                "(bound %.0f s): the dead instance's locks were waited out"
                                % (no, served, SERVE_BOUND))
            if "broke the lock of our previous instance" not in d.log(since_start=True):
                problems.append("round %d: the restarted daemon broke no lock of its killed "
                                "predecessor" % no)
        for n in PCS:
            problems += models[n].check(d, n)
        if problems:
            return
        for n in PCS:
            problems += settle(d, n, models[n])
        if problems:
            return
        delay = rnd.uniform(0.8, 3.0)
        threads = [threading.Thread(target=writer, args=(d, n, models[n], random.Random(no * 7 + i),
                                                         (no << 40) | (i << 36), stats))
                   for i, n in enumerate(PCS)]
        for t in threads:
            t.start()
        time.sleep(delay)
        d.kill9()
        for t in threads:
            t.join(60)
        print("round %d: served %.1f s after start; killed after %.1f s; %d writes, %d flushes so far"
              % (no, served, delay, stats["writes"], stats["flushes"]), flush=True)
    # the last round's writes: checked after one more restart
    d.start()
    served = time.monotonic()
    for n in PCS:
        login_time(d, n)
    served = time.monotonic() - served
    worst = max(worst, served)
    if served > SERVE_BOUND:
        problems.append("after the last kill the PCs were served %.1f s after the restart" % served)
    for n in PCS:
        problems += models[n].check(d, n)
    print("%d kill -9 rounds: %d writes, %d flushes; slowest restart to both PCs served: %.1f s"
          % (ROUNDS, stats["writes"], stats["flushes"], worst), flush=True)
    if stats["flushes"] < ROUNDS:
        problems.append("only %d flushes in %d rounds: the writers did not run" % (stats["flushes"], ROUNDS))


def data_image(pool, ovl):
    """The live data image of the overlay whose DIR is ovl (ovl_ceph.h):
    DIR.INST.data, INST the marker's xattr (rados talks to the test's
    cluster through CEPH_ARGS)."""
    r = subprocess.run(["rados", "-p", pool, "getxattr", ovl, "inst"], capture_output=True,
                       timeout=30)
    inst = r.stdout.decode(errors="replace").strip("\0\n")
    return "%s.%s.data" % (ovl, inst) if r.returncode == 0 and inst else None


def live_holder(d, ceph_conf, pool, problems):
    """A live other client holds pc1's data image: never broken, pc1 not served."""
    rc, info = d.ctl("client", "show", PCS[0])
    if rc != 0 or not isinstance(info, dict):
        problems.append("client show pc1: %r" % (info,))
        return
    # pc1's first 4 KiB in its data image (the holder overwrites them there)
    s = d.session(PCS[0])
    try:
        t = F.write(s, 0, b"\x21" * 4096)
        if t.status == 0:
            t = F.sync(s)
        if t.status != 0:
            problems.append("pc1: its write of its first 4 KiB: %s" % F.fmt_sense(t))
            return
    finally:
        F.close_quietly(s)
    clone = data_image(pool, info["overlay_dir"].split("/", 1)[1])
    if clone is None:
        problems.append("pc1's overlay %s has no marker in Ceph" % info["overlay_dir"])
        return
    problems += d.stop()
    h = subprocess.Popen([HOLDER, ceph_conf, pool, clone], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        line = h.stdout.readline().strip()
        if not line.startswith("held "):
            problems.append("rbd_lock_holder: %r" % line)
            return
        print("a second client holds %s's lock: %s" % (clone, line[5:]), flush=True)
        d.start()
        t0 = time.monotonic()
        try:
            s = d.session(PCS[0], timeout=45)
            t = s.read(0, 8)
            F.close_quietly(s)
            if t.status == 0:
                problems.append("pc1 was served while another client holds its data image's lock")
            else:
                print("pc1: its READ fails: %s after %.1f s" % (F.fmt_sense(t), time.monotonic() - t0))
        except (I.ISCSIError, OSError) as e:
            print("pc1: refused after %.1f s (%s)" % (time.monotonic() - t0, str(e).splitlines()[0]))
        waited = time.monotonic() - t0
        if waited > 40:
            problems.append("pc1's refusal took %.1f s" % waited)
        if "broke the lock" in d.log(since_start=True):
            problems.append("the daemon says it broke a lock:\n" + d.log(since_start=True)[-2000:])
        login_time(d, PCS[1])            # the other PC is served meanwhile
        out, _ = h.communicate("go\n", timeout=60)
        if h.returncode != 0 or "ok: still the owner, wrote" not in out:
            problems.append("the second client lost its lock or its writes: %r" % out)
        else:
            print(out.strip())
    finally:
        if h.poll() is None:
            h.kill()
            h.wait(10)
    # the holder is gone (it released the lock): pc1 is served and reads its write
    s = d.session(PCS[0], timeout=45)
    try:
        t = s.read(0, 8)
        if t.status != 0 or bytes(t.data) != b"\x4c" * 4096:
            problems.append("pc1 after the holder left: %s, not the holder's write"
                            % (F.fmt_sense(t) if t.status else "other data"))
        else:
            print("pc1 served again after the holder left; reads the holder's write")
    finally:
        F.close_quietly(s)


def main():
    conf, golden_path, state, port, ceph_conf, pool = sys.argv[1:7]
    for path in (F.PRISTINED, HOLDER):
        if not os.access(path, os.X_OK):
            print("%s not built (make asan)" % path)
            return F.SKIP
    with open(golden_path, "rb") as f:
        golden = f.read()
    d = RbdDaemon(conf, golden_path, state, int(port))
    problems = []
    try:
        kill_rounds(d, golden, problems)
        if not problems:
            live_holder(d, ceph_conf, pool, problems)
        problems += d.stop()
    except (I.ISCSIError, OSError, subprocess.TimeoutExpired) as e:
        problems.append("%s: %s" % (type(e).__name__, e))
    finally:
        if problems:
            print("--- pristined log (tail)\n" + d.log()[-4000:])
        d.cleanup()
    for p in problems:
        print("FAIL: " + p)
    if not problems:
        print("PASS")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
