#!/usr/bin/env python3
"""Many commands of one session in flight at once (src/proto/inflight.c).

The daemon runs under build/faultinject.so with a delay rule: every read
of the golden image sleeps DELAY seconds (a slow store, like a network
disk), so what overlaps and what does not shows in the time a batch
takes.  Checked:
- the knob works: QD1 reads take at least DELAY each;
- QD8 and QD32 batches of 4 KiB random reads take a fraction of the
  serial time (SIMPLE commands run on the worker pool), and every read
  returns the right bytes;
- an ORDERED read is a barrier: it is answered after every command
  before it, and none after it is answered before it;
- ABORT TASK and LUN RESET, and a logout, sent while reads are in flight
  are answered only after those reads (no response after the TMF or
  logout response);
- writes in flight at once (immediate data, and ones that need R2T)
  all land, and read back right;
- a connection closed with 32 reads in flight, and session
  reinstatement over one with reads in flight, leave the daemon serving
  (and the ASan build reports no use-after-free or leak at exit);
- peers that stop reading cannot starve the others: with more sessions
  than there are workers (64) each leaving an 8 MiB READ unread (its
  sender blocked in send; reads of 2 ms send them to the workers),
  another session's 64 KiB reads (on the workers too) still complete at
  once;
- 64 KiB READs (Data-In PDUs of 32 KiB: streamed, read while they are
  sent, on a fast store) of a session whose reads have been fast (its
  overlay's blocks, which the delay rule spares: they run on the
  connection's thread, unless the ASan build on a loaded box makes them
  slower than 50 us per 32 KiB) overlap again when they get slow: QD16 of them
  on the delayed golden take a fraction of the serial time; ABORT TASK
  and logout with 64 KiB reads in flight, on the slow golden (workers)
  and on the fast overlay (streamed on the connection's thread), are
  answered only after those reads; a connection dropped with streamed
  reads unsent leaves the daemon serving;
- StatSN is consecutive and MaxCmdSN >= ExpCmdSN - 1 on every PDU (the
  initiator library flags any violation).
Every wait is bounded (session timeouts, TEST_TIMEOUT of tests/run.sh).
"""
import os
import random
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "faults"))
import iscsi_initiator as I  # noqa: E402
import faultlib as F  # noqa: E402

BS = 512
MIB = 16
DELAY = 0.1                 # seconds per read of the golden image
INI = "iqn.2024-01.test.pristine:inflight"
TMF_ABORT_TASK, TMF_LUN_RESET = 1, 5


def status_order(s):
    """Record the ITT of every PDU that carries a status, in arrival order."""
    order = []
    recv = s.conn.recv_pdu

    def recording(*a, **kw):
        p = recv(*a, **kw)
        if p.opcode in (I.OP_SCSI_RESP, I.OP_TMF_RESP, I.OP_LOGOUT_RESP) or \
                (p.opcode == I.OP_DATA_IN and p.has_status):
            order.append(p.itt)
        return p

    s.conn.recv_pdu = recording
    return order


def check_read(d, t, lba, problems, what):
    if t.status != I.GOOD:
        problems.append("%s: read at LBA %d: status %r" % (what, lba, t.status))
        return
    want = d.expected[lba * BS:(lba + 8) * BS]
    if bytes(t.data) != want:
        problems.append("%s: read at LBA %d returned the wrong bytes" % (what, lba))


def batch(s, d, lbas, problems, what, attrs=None):
    """Submit 4 KiB READs at lbas all at once, wait for all; returns
    (seconds, tasks)."""
    start = time.monotonic()
    tasks = []
    for i, lba in enumerate(lbas):
        attr = attrs[i] if attrs else 1
        tasks.append(s.submit(I.cdb_read10(lba, 8), read_len=8 * BS, attr=attr))
    for t in tasks:
        s.wait_task(t, timeout=30)
    secs = time.monotonic() - start
    for t, lba in zip(tasks, lbas):
        check_read(d, t, lba, problems, what)
    return secs, tasks


def fresh_lbas(rnd, used, n):
    """n 4 KiB-aligned LBAs never read before (so the page cache cannot
    answer them: each read reaches the delayed pread)."""
    out = []
    while len(out) < n:
        lba = rnd.randrange(0, MIB * 2048 // 8) * 8
        if lba not in used:
            used.add(lba)
            out.append(lba)
    return out


STALLED = 72                # sessions that stop reading: more than the 64 workers
# Data-In PDUs of 32 KiB: READs over 32 KiB are streamed (deferred).
MRDSL = [("MaxRecvDataSegmentLength", "262144")]
SLOW_LBA = 16384            # 64 KiB pieces of the golden above here: never written
STREAM = 128                # blocks of a streamed read (64 KiB)


def streamed_batch(s, image, lbas, problems, what):
    """Submit 64 KiB READs at lbas all at once, wait for all, check them
    against image; returns (seconds, tasks)."""
    start = time.monotonic()
    tasks = [s.submit(I.cdb_read10(lba, STREAM), read_len=STREAM * BS) for lba in lbas]
    for t in tasks:
        s.wait_task(t, timeout=30)
    secs = time.monotonic() - start
    for t, lba in zip(tasks, lbas):
        if t.status != I.GOOD or bytes(t.data) != image[lba * BS:(lba + STREAM) * BS]:
            problems.append("%s: streamed read at LBA %d: status %r or wrong bytes"
                            % (what, lba, t.status))
    return secs, tasks


def warm(s, image, fast_lbas, problems, what):
    """4 KiB reads of blocks the delay rule spares, one at a time, until
    the session's recent reads are fast (so its streamed reads run
    inline; a 64 KiB read done whole counts whole, see inflight.c)."""
    # From a 100 ms average (the delayed golden) below 50 us: ~60 reads.
    for k in range(96):
        lba = fast_lbas[k % len(fast_lbas)] + 8 * (k // len(fast_lbas))
        t = s.read(lba, 8, timeout=30)
        if t.status != I.GOOD or bytes(t.data) != image[lba * BS:(lba + 8) * BS]:
            problems.append("%s (warming): read at LBA %d: status %r or wrong bytes"
                            % (what, lba, t.status))


def own_region(s, d, fast_lbas, seed):
    """Write the 64 KiB pieces at fast_lbas through s (its overlay: reads
    of them skip the delayed golden); returns the disk as s reads it."""
    rnd = random.Random(seed)
    image = bytearray(d.expected)
    for lba in fast_lbas:
        data = rnd.randbytes(STREAM * BS)
        s.write(lba, data, timeout=30)
        image[lba * BS:(lba + STREAM) * BS] = data
    return bytes(image)


def streamed_in_flight(d, fast_lbas, slow_lbas, problems):
    """Streamed reads, fast then slow, and TMF/logout/drop with them in
    flight."""
    s = d.session(initiator_name=INI + "-stream", timeout=30)
    s.login(op_keys=MRDSL)
    s.ready()
    try:
        image = own_region(s, d, fast_lbas, 21)
        warm(s, image, fast_lbas, problems, "streamed")
        qd = 16
        secs, _ = streamed_batch(s, image, slow_lbas[:qd], problems, "streamed QD16")
        # Each streamed read of the golden takes one or two delayed preads.
        serial = qd * DELAY
        print("QD16 64 KiB reads on the slow golden after fast ones: %.3fs (serial: >= %.1fs)"
              % (secs, serial))
        if secs > serial / 3:
            problems.append("QD16: 16 reads of 64 KiB of at least %.1fs each took %.3fs, more "
                            "than 1/3 of the serial %.1fs: slow reads did not overlap"
                            % (DELAY, secs, serial))
        slow_lbas = slow_lbas[qd:]
        for where, lbas in (("slow golden", slow_lbas[:8]), ("fast overlay", fast_lbas[:8])):
            if where == "fast overlay":
                warm(s, image, fast_lbas, problems, "streamed")
            tasks = [s.submit(I.cdb_read10(lba, STREAM), read_len=STREAM * BS) for lba in lbas]
            p = s.tmf(TMF_ABORT_TASK, ref_itt=tasks[-1].itt, refcmdsn=tasks[-1].cmdsn, timeout=30)
            undone = [t for t in tasks if not t.done]
            if undone:
                problems.append("ABORT TASK answered before %d of 8 64 KiB reads in flight (%s)"
                                % (len(undone), where))
            for t, lba in zip(tasks, lbas):
                s.wait_task(t, timeout=30)
                if t.status != I.GOOD or bytes(t.data) != image[lba * BS:(lba + STREAM) * BS]:
                    problems.append("ABORT TASK (%s): 64 KiB read at LBA %d: status %r or "
                                    "wrong bytes" % (where, lba, t.status))
            if p.opcode != I.OP_TMF_RESP or p.response not in (0, 1):
                problems.append("ABORT TASK (%s): %r response %r"
                                % (where, p, getattr(p, "response", None)))
        slow_lbas = slow_lbas[8:]
        # Logout with streamed reads of the fast overlay in flight.
        warm(s, image, fast_lbas, problems, "streamed")
        tasks = [s.submit(I.cdb_read10(lba, STREAM), read_len=STREAM * BS) for lba in fast_lbas[:8]]
        s.logout(timeout=30)
        undone = [t for t in tasks if not t.done]
        if undone:
            problems.append("logout answered before %d of 8 streamed reads in flight"
                            % len(undone))
        for v in s.violations:
            problems.append("streamed session: " + v)
    finally:
        s.close()
    # A connection dropped with streamed reads unsent (fast, then slow).
    s = d.session(initiator_name=INI + "-stream-drop", timeout=30)
    try:
        s.login(op_keys=MRDSL)
        s.ready()
        image = own_region(s, d, fast_lbas, 22)
        warm(s, image, fast_lbas, problems, "drop")
        for lba in fast_lbas[:16] + slow_lbas[:8]:
            s.submit(I.cdb_read10(lba, STREAM), read_len=STREAM * BS)
    finally:
        s.close()


def start_delayed(d, delay):
    """Start d under the shim: every read of its golden sleeps delay s."""
    ctl = os.path.join(d.tmp, "fault.ctl")
    with open(ctl + ".tmp", "w") as f:
        f.write("ops=read path=*/disk.img delay_us=%d\n" % int(delay * 1e6))
    os.rename(ctl + ".tmp", ctl)
    saved = {k: os.environ.get(k) for k in ("LD_PRELOAD", "FAULT_CTL")}
    asan = F.sanitizer_runtime(d.binary)
    os.environ["LD_PRELOAD"] = " ".join(x for x in (asan, F.SHIM) if x)
    os.environ["FAULT_CTL"] = ctl
    try:
        d.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def stalled_readers(problems):
    """A read-only daemon whose golden reads take 2 ms (slow enough that
    READs go to the workers): STALLED sessions each leave a 8 MiB READ
    unread (the most a READ may ask; streamed by its worker's sender),
    then a fresh session reads 64 KiB pieces."""
    d = I.Daemon(mib=32)
    sessions = []
    try:
        start_delayed(d, 0.002)
        for i in range(STALLED):
            s = d.session(initiator_name="%s-stall-%d" % (INI, i), timeout=30)
            sessions.append(s)
            s.login(op_keys=MRDSL)
            s.ready()
            # Times the store slow: the next READ goes to a worker.
            s.read(2048, 8, timeout=30)
            s.submit(I.cdb_read10(0, 16384), read_len=16384 * BS)
        time.sleep(1)           # their senders fill the socket buffers and block
        s = d.session(initiator_name=INI + "-fresh", timeout=30)
        sessions.append(s)
        s.login(op_keys=MRDSL)
        s.ready()
        start = time.monotonic()
        for k in range(8):
            lba = 1024 + k * 128
            t = s.read(lba, 128, timeout=30)
            if bytes(t.data) != d.expected[lba * BS:(lba + 128) * BS]:
                problems.append("beside stalled readers: 64 KiB read at LBA %d wrong" % lba)
        secs = time.monotonic() - start
        print("8 reads of 64 KiB beside %d stalled readers: %.3fs" % (STALLED, secs))
        if secs > 10:
            problems.append("8 reads of 64 KiB took %.1fs beside %d sessions that stopped reading: "
                            "their blocked senders starve the workers" % (secs, STALLED))
        for v in s.violations:
            problems.append("fresh session: " + v)
    except I.ISCSIError as e:
        problems.append("stalled readers: iSCSI error: %s" % e)
    finally:
        for x in sessions:
            x.close()
        problems += d.stop()
        d.cleanup()


def main():
    why = F.prerequisites()
    if why:
        print(why)
        return 77
    d = I.Daemon(mib=MIB, writable=True)
    if not d.available():
        print("pristined not built")
        return 77
    problems = []
    rnd = random.Random(14)
    used = set()
    start_delayed(d, DELAY)
    sessions = []
    try:
        s = d.session(initiator_name=INI, timeout=30)
        sessions.append(s)
        s.login()
        s.ready()

        # The knob: one read at a time costs DELAY each.
        serial = 0.0
        for lba in fresh_lbas(rnd, used, 4):
            secs, _ = batch(s, d, [lba], problems, "QD1")
            serial += secs
        print("QD1: 4 reads in %.3fs" % serial)
        if serial < 4 * DELAY * 0.9:
            problems.append("QD1: 4 reads took %.3fs, less than the %.1fs the delay rule "
                            "imposes: the knob does not work, nothing below means anything"
                            % (serial, 4 * DELAY))

        # QD8 and QD32: the batch overlaps.
        for qd, bound in ((8, 3), (32, 6)):
            secs, _ = batch(s, d, fresh_lbas(rnd, used, qd), problems, "QD%d" % qd)
            print("QD%d: %d reads in %.3fs (serial: %.1fs)" % (qd, qd, secs, qd * DELAY))
            if secs > qd * DELAY / bound:
                problems.append("QD%d: %d reads of %.1fs each took %.3fs, more than 1/%d of "
                                "the serial %.1fs: commands did not overlap"
                                % (qd, qd, DELAY, secs, bound, qd * DELAY))

        # ORDERED is a barrier both ways.
        order = status_order(s)
        lbas = fresh_lbas(rnd, used, 9)
        secs, tasks = batch(s, d, lbas, problems, "ORDERED", attrs=[1] * 4 + [2] + [1] * 4)
        itts = [t.itt for t in tasks]
        pos = {itt: order.index(itt) for itt in itts if itt in order}
        if len(pos) != 9:
            problems.append("ORDERED: only %d of 9 statuses seen" % len(pos))
        else:
            o = pos[itts[4]]
            if any(pos[i] > o for i in itts[:4]) or any(pos[i] < o for i in itts[5:]):
                problems.append("ORDERED: status order %s does not put the ORDERED task "
                                "0x%x between the four before and the four after"
                                % (["0x%x" % order[k] for k in sorted(pos.values())], itts[4]))
        # Three rounds of DELAY at least: before, the ORDERED one, after.
        print("ORDERED in the middle of 8 SIMPLE: %.3fs" % secs)
        if secs < 3 * DELAY * 0.9:
            problems.append("ORDERED: the batch took %.3fs, less than three reads in a row" % secs)

        # Task management and logout wait for what is in flight.
        for fn in (TMF_ABORT_TASK, TMF_LUN_RESET):
            lbas = fresh_lbas(rnd, used, 8)
            tasks = [s.submit(I.cdb_read10(lba, 8), read_len=8 * BS) for lba in lbas]
            del order[:]
            p = s.tmf(fn, ref_itt=tasks[-1].itt, refcmdsn=tasks[-1].cmdsn, timeout=30)
            undone = [t for t in tasks if not t.done]
            if undone:
                problems.append("TMF %d answered (response %d) before %d of the 8 reads in flight"
                                % (fn, p.response, len(undone)))
            for t in tasks:
                s.wait_task(t, timeout=30)
            for t, lba in zip(tasks, lbas):
                check_read(d, t, lba, problems, "TMF %d" % fn)
            if p.opcode != I.OP_TMF_RESP or p.response not in (0, 1):
                problems.append("TMF %d: %r response %r" % (fn, p, getattr(p, "response", None)))
            if fn == TMF_LUN_RESET:
                s.ready()       # the reset's unit attention
        for v in s.violations:
            problems.append("session 1: " + v)

        # Writes in flight at once: immediate data only, and 512 KiB
        # ones that need R2T past the first burst.
        wrnd = random.Random(7)
        writes = []
        for i in range(16):
            lba = 4096 + i * 8
            writes.append((lba, wrnd.randbytes(8 * BS)))
        for i in range(4):
            lba = 8192 + i * 1024
            writes.append((lba, wrnd.randbytes(1024 * BS)))
        wt = [s.submit(I.cdb_write10(lba, len(data) // BS), write_data=data) for lba, data in writes]
        for t in wt:
            s.wait_task(t, timeout=30)
            if t.status != I.GOOD:
                problems.append("write ITT 0x%x: status %r" % (t.itt, t.status))
        for lba, data in writes:
            got = s.read(lba, len(data) // BS, timeout=30)
            if bytes(got.data) != data:
                problems.append("write at LBA %d did not read back" % lba)

        streamed_in_flight(d, [8192 + k * STREAM for k in range(32)],
                           [SLOW_LBA + k * STREAM for k in range(64)], problems)

        # Logout with reads in flight: their statuses come first.
        tasks = [s.submit(I.cdb_read10(lba, 8), read_len=8 * BS) for lba in fresh_lbas(rnd, used, 8)]
        s.logout(timeout=30)
        undone = [t for t in tasks if not t.done]
        if undone:
            problems.append("logout answered before %d of the 8 reads in flight" % len(undone))
        for v in s.violations:
            problems.append("session 1: " + v)

        # A connection dropped with 32 reads in flight.
        s2 = d.session(initiator_name=INI + "-drop", timeout=30)
        sessions.append(s2)
        s2.login()
        s2.ready()
        for lba in fresh_lbas(rnd, used, 32):
            s2.submit(I.cdb_read10(lba, 8), read_len=8 * BS)
        s2.close()

        # Reinstatement of a session with reads in flight: same initiator
        # name and ISID log in again while the old one still reads.
        s3 = d.session(initiator_name=INI + "-re", timeout=30)
        sessions.append(s3)
        s3.login()
        s3.ready()
        for lba in fresh_lbas(rnd, used, 16):
            s3.submit(I.cdb_read10(lba, 8), read_len=8 * BS)
        s4 = d.session(initiator_name=INI + "-re", isid=s3.isid, timeout=30)
        sessions.append(s4)
        s4.login()
        s4.ready()
        secs, _ = batch(s4, d, fresh_lbas(rnd, used, 8), problems, "after reinstatement")
        for v in s4.violations:
            problems.append("reinstated session: " + v)
    except I.ISCSIError as e:
        problems.append("iSCSI error: %s" % e)
    finally:
        for x in sessions:
            x.close()
        problems += d.stop()
        if problems:
            print(d.log()[-3000:])
        d.cleanup()
    stalled_readers(problems)
    if problems:
        for p in problems:
            print("FAIL:", p)
        return 1
    print("ok: commands overlap, barriers hold, nothing answered after the connection or TMF")
    return 0


if __name__ == "__main__":
    sys.exit(main())
