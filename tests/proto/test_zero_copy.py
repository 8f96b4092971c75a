#!/usr/bin/env python3
"""Data-In of large READs (src/proto/datain.c), both ways: with
--zero-copy spliced from the page cache of the golden image and the
client's overlay, without it read PDU by PDU into a buffer.

Every read is checked against a model of the disk the test keeps itself:
- an overlay with every block state mixed in one READ: untouched blocks
  (read from golden), written blocks (the overlay's data file), partly
  written blocks (copy-up), unmapped blocks (zeros), at LBAs that do not
  start on a page;
- PDU sizes that split reads in odd places: MaxRecvDataSegmentLength
  262144, 65536, and 100001 (not a multiple of 4: every PDU but the last
  carries a pad), MaxBurstLength smaller than the read;
- the pipe pool (16) running dry: 20 sessions each leave an 8 MiB READ
  unread, so their connection threads sit in a send holding a pipe; a
  21st session's reads (which then go through a buffer) and, once read,
  all the stalled ones are right;
- the same reads without --zero-copy (32 KiB PDUs, each read just
  before it is sent; odd sizes below 32 KiB; bursts of 3 PDUs), and with
  data digests (never spliced), give the same bytes;
- a 1 MiB READ read PDU by PDU is still atomic against WRITE ATOMIC of
  the same client's other session: all old or all new, never a mix.
No protocol violations (DataSegmentLength over what was declared, DataSN,
offsets, residuals) are allowed anywhere.
"""
import os
import random
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

BS = 512
MIB = 32
INI = "iqn.2024-01.test.pristine:zc"


def cdb_unmap(nbytes):
    return bytes([0x42, 0, 0, 0, 0, 0, 0]) + struct.pack(">H", nbytes) + bytes(1)


def unmap_list(ranges):
    desc = b"".join(struct.pack(">QI4x", lba, n) for lba, n in ranges)
    return struct.pack(">HH4x", 6 + len(desc), len(desc)) + desc


def data_in_sizes(s):
    """Record the DataSegmentLength of every Data-In PDU s receives."""
    sizes = []
    recv = s.conn.recv_pdu

    def recording(*a, **kw):
        p = recv(*a, **kw)
        if p.opcode == I.OP_DATA_IN:
            sizes.append(p.dsl)
        return p

    s.conn.recv_pdu = recording
    return sizes


def login(d, name=INI, mrdsl=262144, burst=None, digests=None):
    keys = [("MaxRecvDataSegmentLength", str(mrdsl))]
    if burst:
        keys.append(("MaxBurstLength", str(burst)))
    s = d.session(initiator_name=name)
    s.login(op_keys=keys, digests=digests)
    s.ready()
    return s


def shape_disk(s, model, rnd):
    """Writes (whole 4 KiB blocks, odd sectors, unaligned runs) and
    unmaps into the client's overlay, mirrored into model."""
    problems = []
    for _ in range(60):
        lba = rnd.randrange(0, MIB * 2048 - 64)
        n = rnd.choice((1, 3, 8, 9, 16, 40, 64))
        data = rnd.randbytes(n * BS)
        t = s.write(lba, data)
        if t.status != 0:
            problems.append("WRITE LBA %d x%d: status %d" % (lba, n, t.status))
            continue
        model[lba * BS:(lba + n) * BS] = data
    ranges = []
    for _ in range(12):
        lba = rnd.randrange(0, MIB * 2048 - 256) & ~7      # whole 4 KiB blocks
        ranges.append((lba, rnd.choice((8, 64, 256))))
    payload = unmap_list(ranges)
    t = s.command(cdb_unmap(len(payload)), write_data=payload)
    if t.status != 0:
        problems.append("UNMAP: status %d sense %s" % (t.status, t.sense.hex()))
    else:
        for lba, n in ranges:
            model[lba * BS:(lba + n) * BS] = bytes(n * BS)
    return problems


def read_check(s, model, lba, blocks, what):
    t = s.read(lba, blocks)
    if t.status != 0:
        return ["%s: READ LBA %d x%d: status %d sense %s" % (what, lba, blocks, t.status,
                                                            t.sense.hex())]
    want = bytes(model[lba * BS:(lba + blocks) * BS])
    if bytes(t.data) != want:
        off = next(i for i in range(len(want)) if t.data[i] != want[i])
        return ["%s: READ LBA %d x%d: wrong data from byte %d" % (what, lba, blocks, off)]
    return []


def sweep(s, model, rnd, what, count=40):
    problems = []
    for _ in range(count):
        blocks = rnd.choice((128, 129, 200, 511, 1024, 2048, 4096))
        lba = rnd.randrange(0, MIB * 2048 - blocks)
        problems += read_check(s, model, lba, blocks, what)
    problems += read_check(s, model, 0, MIB * 2048 // 4, what + " (first quarter, 8 MiB)")
    if s.violations:
        problems += ["%s: protocol violations: %s" % (what, s.violations[:5])]
    return problems


def cdb_write_atomic16(lba, blocks):
    return bytes([0x9c, 0]) + struct.pack(">QHH", lba, 0, blocks) + bytes(2)


def atomic_vs_reads(d, model, seconds=6.0, max_reads=400):
    """One session rewrites 256 blocks with WRITE ATOMIC(16), pattern A,
    B, A, ...; another session of the same client reads 1 MiB around them
    in 32 KiB PDUs meanwhile.  Every read must see the 256 blocks all A,
    all B, or as they were - never a mix: a deferred read holds the LU
    from its first PDU to its last."""
    import threading
    import time
    lba0 = 4096 + 3             # the atomic range starts inside a PDU
    n = 256
    pats = [bytes([0xA5]) * (n * BS), bytes([0x5B]) * (n * BS)]
    before = bytes(model[lba0 * BS:(lba0 + n) * BS])
    ok_views = {before, pats[0], pats[1]}
    w, r = login(d), login(d)
    stop = threading.Event()
    problems, counts = [], {"writes": 0, "reads": 0}

    def writer():
        i = 0
        while not stop.is_set():
            t = w.command(cdb_write_atomic16(lba0, n), write_data=pats[i % 2])
            if t.status != 0:
                problems.append("WRITE ATOMIC: status %d sense %s" % (t.status, t.sense.hex()))
                return
            i += 1
            counts["writes"] = i

    th = threading.Thread(target=writer)
    th.start()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline and counts["reads"] < max_reads and not problems:
            t = r.read(lba0 - 1024, 2048)
            counts["reads"] += 1
            if t.status != 0:
                problems.append("READ: status %d" % t.status)
                break
            view = bytes(t.data[1024 * BS:(1024 + n) * BS])
            if view not in ok_views:
                a = sum(1 for k in range(n) if view[k * BS:(k + 1) * BS] == pats[0][:BS])
                problems.append("read %d saw a mix of the atomic write's old and new data "
                                "(%d of %d blocks A)" % (counts["reads"], a, n))
    finally:
        stop.set()
        th.join(30)
    model[lba0 * BS:(lba0 + n) * BS] = pats[(counts["writes"] - 1) % 2] if counts["writes"] else before
    if not problems and counts["writes"] < 10:
        problems.append("only %d atomic writes during %d reads: no race exercised"
                        % (counts["writes"], counts["reads"]))
    for s in (w, r):
        s.logout()
    print("     %d reads of 1 MiB against %d WRITE ATOMIC" % (counts["reads"], counts["writes"]))
    return problems


def pipe_fds(d):
    """File descriptors of the daemon that are pipe ends (after the
    connection threads have had a moment to block)."""
    import time
    time.sleep(0.5)
    fds = "/proc/%d/fd" % d.proc.pid
    n = 0
    for f in os.listdir(fds):
        try:
            n += os.readlink(os.path.join(fds, f)).startswith("pipe:")
        except OSError:
            pass
    return n


def main():
    d = I.Daemon(mib=MIB, writable=True, extra=["--zero-copy"])
    if not d.available():
        print("build/asan/pristined is not built")
        return 77
    check = I.Checker()
    d.start()
    base_fds = pipe_fds(d)          # the daemon's own pipes, before any read
    rnd = random.Random(7)
    model = bytearray(d.expected)
    try:
        s = login(d)
        check.case("the overlay gets every block state (writes, copy-ups, unmaps)",
                   shape_disk, s, model, rnd)
        sizes = data_in_sizes(s)
        check.case("reads across all states, MaxRecvDataSegmentLength 262144",
                   sweep, s, model, rnd, "262144")
        check.case("with --zero-copy, Data-In PDUs are as large as the initiator takes",
                   lambda: [] if max(sizes) == 262144 else
                   ["largest Data-In PDU %d bytes, want 262144" % max(sizes)])
        s.logout()
        for mrdsl, burst in ((65536, None), (100001, None), (262144, 196608)):
            def odd(mrdsl=mrdsl, burst=burst):
                s2 = login(d, mrdsl=mrdsl, burst=burst)
                try:
                    return sweep(s2, model, rnd, "MRDSL %d burst %s" % (mrdsl, burst), 20)
                finally:
                    s2.logout()
            check.case("reads with MaxRecvDataSegmentLength %d, MaxBurstLength %s"
                       % (mrdsl, burst or "default"), odd)

        def dry_pool():
            stalled = []
            problems = []
            try:
                for i in range(20):
                    s2 = login(d, name="%s-stalled-%d" % (INI, i))    # empty overlays: golden
                    lba = (i * 16384) % (MIB * 2048 - 16384)
                    t = s2.submit(I.cdb_read10(lba, 16384), read_len=16384 * BS)
                    stalled.append((s2, t, lba))
                held = (pipe_fds(d) - base_fds) // 2
                if held != 16:
                    problems.append("%d more pipes open while 20 readers stall, want the pool's 16"
                                    % held)
                s3 = login(d, name=INI)
                problems += sweep(s3, model, rnd, "beside 20 stalled readers", 10)
                s3.logout()
                for s2, t, lba in stalled:
                    s2.wait_task(t, timeout=60)
                    want = d.expected[lba * BS:(lba + 16384) * BS]
                    if t.status != 0 or bytes(t.data) != want:
                        problems.append("stalled 8 MiB READ at LBA %d: status %s%s"
                                        % (lba, t.status, "" if t.status else ", wrong data"))
                    if s2.violations:
                        problems.append("stalled reader: violations %s" % s2.violations[:3])
            finally:
                for s2, _, _ in stalled:
                    try:
                        s2.logout(timeout=5)
                    except Exception:       # already gone
                        pass
            return problems

        check.case("20 readers that do not read hold the pipes; others still read right",
                   dry_pool)

        def digests():
            s2 = login(d, digests=True)
            try:
                return sweep(s2, model, rnd, "data digests", 10)
            finally:
                s2.logout()

        check.case("with data digests (copied, never spliced) the same bytes", digests)
        problems = d.stop()
        check.case("daemon stops cleanly", lambda: problems)

        d2 = I.Daemon(mib=MIB, writable=True)
        d2.start()
        base2 = pipe_fds(d2)
        try:
            def same_without():
                s2 = login(d2)
                m2 = bytearray(d2.expected)
                problems = shape_disk(s2, m2, random.Random(7))
                sizes = data_in_sizes(s2)
                problems += sweep(s2, m2, random.Random(8), "PDU by PDU", 20)
                if max(sizes) != 32768:
                    problems.append("largest Data-In PDU %d bytes, want 32768 (DATAIN_PDU_MAX) "
                                    "though the initiator takes 262144" % max(sizes))
                s2.logout()
                problems += atomic_vs_reads(d2, m2)
                s2 = login(d2)
                problems += sweep(s2, m2, random.Random(9), "after the atomic writes", 5)
                s2.logout()
                # 30001: PDUs under 32 KiB and not a multiple of 4 (whole
                # command read at once, padded PDUs); a burst of 3 PDUs
                for mrdsl, burst in ((30001, None), (262144, 98304)):
                    s2 = login(d2, mrdsl=mrdsl, burst=burst)
                    problems += sweep(s2, m2, random.Random(mrdsl), "MRDSL %d burst %s"
                                      % (mrdsl, burst), 10)
                    s2.logout()
                if pipe_fds(d2) != base2:
                    problems.append("pipes were opened although zero-copy is off")
                return problems

            check.case("without --zero-copy (PDU by PDU): the same reads right", same_without)
        finally:
            problems2 = d2.stop()
            d2.cleanup()
        check.case("the daemon without --zero-copy stops cleanly", lambda: problems2)
    finally:
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
