#!/usr/bin/env python3
"""Fault: EIO reading the golden image in a range (a bad spot on the
source disk), injected by build/faultinject.so into a live pristined.

- a READ touching the range: CHECK CONDITION, MEDIUM ERROR, UNRECOVERED
  READ ERROR (03/11/00), for every client; the failure is logged (the
  file, the LUN, the initiator), rate-limited under repetition;
- other LBAs, and blocks a client holds in its overlay, read fine; a
  write needing a copy-up from the bad range fails with WRITE ERROR
  (03/0C/00) but does not put the overlay in its error state: whole-block
  writes and flushes go on;
- disarmed, the same reads work again without a restart;
- after a restart every synced write reads back; the golden image's
  sha256 is unchanged.
"""
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

I = F.I
BAD_FROM, BAD_TO = 4 << 20, 8 << 20          # bytes of golden.img that fail
BAD_LBA = BAD_FROM // F.BS                   # 8192
A, B = "iqn.2024-01.test.faults:ga", "iqn.2024-01.test.faults:gb"
Z = "iqn.2024-01.test.faults:gz"               # 256 KiB PDUs: large reads go PDU by PDU
BIG_PDUS = [("MaxRecvDataSegmentLength", "262144")]


def main():
    why = F.prerequisites()
    if why:
        print(why)
        return F.SKIP
    check = I.Checker()
    d = F.Daemon(mib=32)
    sa = sb = sz = None
    committed = {A: {}, B: {}}
    try:
        d.start()
        sa, sb = d.session(A), d.session(B)
        golden = d.golden

        def before():
            # a 4 KiB block inside the future bad range, held by A's overlay
            data = F.pattern("a-held", BAD_LBA + 64, 8)
            t = F.write(sa, BAD_LBA + 64, data)
            if t.status != 0 or F.sync(sa).status != 0:
                return ["write+sync before the fault failed: %s" % F.fmt_sense(t)]
            committed[A][BAD_LBA + 64] = data
            return []

        check.case("setup: A holds a block inside the range", before)
        mark = d.log_mark()
        d.arm("ops=read path=*/golden.img errno=EIO from=%d to=%d" % (BAD_FROM, BAD_TO))

        def reads_fail():
            problems = []
            for who, s, lba, n in ((A, sa, BAD_LBA, 8), (B, sb, BAD_LBA + 1000, 16),
                                   (B, sb, BAD_LBA - 2, 4)):      # straddles the start
                t = s.read(lba, n)
                if t.status != 2 or F.sense_of(t) != (0x03, 0x11, 0x00):
                    problems.append("%s READ LBA %d: %s, want CHECK CONDITION 03/11/00"
                                    % (who, lba, F.fmt_sense(t)))
            if not d.hits().get(0):
                problems.append("the shim injected nothing (rule never matched)")
            return problems

        check.case("READ in the bad range: MEDIUM ERROR / UNRECOVERED READ ERROR (03/11/00)",
                   reads_fail)

        def big_reads(dd, s, golden, splice):
            """1 MiB READs in 256 KiB PDUs (src/proto/datain.c: each PDU
            read just before it is sent, or spliced with --zero-copy): one
            whose second half is bad gets 03/11/00 after its first PDUs
            went out, and the session reads on."""
            mark2 = dd.log_mark()
            problems = []
            t = s.read(BAD_LBA - 1024, 2048)
            if t.status != 2 or F.sense_of(t) != (0x03, 0x11, 0x00):
                problems.append("1 MiB READ ending in the range: %s, want 03/11/00" % F.fmt_sense(t))
            if splice and "faultinject: read (splice) " not in dd.log_since(mark2):
                problems.append("no splice of golden.img was failed: the zero-copy path was not taken")
            for lba in (0, BAD_TO // F.BS):
                t = s.read(lba, 2048)
                want = golden[lba * F.BS:lba * F.BS + (1 << 20)]
                if t.status != 0 or bytes(t.data) != want:
                    problems.append("1 MiB READ at LBA %d outside the range: %s%s"
                                    % (lba, F.fmt_sense(t), "" if t.status else ", wrong data"))
            if s.violations:
                problems.append("protocol violations: %s" % s.violations[:3])
            return problems

        def pdu_by_pdu():
            nonlocal sz
            sz = d.session(Z, op_keys=BIG_PDUS)
            return big_reads(d, sz, golden, False)

        check.case("1 MiB READs in 256 KiB PDUs: 03/11/00 in the range, right data outside",
                   pdu_by_pdu)

        def zero_copy():
            dz = F.Daemon(mib=32, golden=golden, extra=["--zero-copy"])
            s = None
            try:
                dz.start()
                dz.arm("ops=read path=*/golden.img errno=EIO from=%d to=%d" % (BAD_FROM, BAD_TO))
                s = dz.session(Z, op_keys=BIG_PDUS)
                problems = big_reads(dz, s, golden, True)
                dz.disarm()
                t = s.read(BAD_LBA - 1024, 2048)
                if t.status != 0 or bytes(t.data) != golden[BAD_FROM - (512 << 10):BAD_FROM + (512 << 10)]:
                    problems.append("after disarming: %s%s" % (F.fmt_sense(t),
                                                               "" if t.status else ", wrong data"))
                F.close_quietly(s)
                s = None
                return problems + dz.stop()
            finally:
                F.close_quietly(s)
                dz.cleanup()

        check.case("the same with --zero-copy (spliced from the page cache)", zero_copy)

        def others_fine():
            problems = []
            t = sb.read(0, 2048)                     # first MiB
            if t.status != 0 or bytes(t.data) != golden[:1 << 20]:
                problems.append("B cannot read LBA 0..2047: %s" % F.fmt_sense(t))
            t = sa.read(BAD_TO // F.BS, 256)          # just after the range
            if t.status != 0 or bytes(t.data) != golden[BAD_TO:BAD_TO + 256 * F.BS]:
                problems.append("A cannot read right after the range: %s" % F.fmt_sense(t))
            t = sa.read(BAD_LBA + 64, 8)              # its own block, from the overlay
            if t.status != 0 or bytes(t.data) != committed[A][BAD_LBA + 64]:
                problems.append("A cannot read its own block inside the range: %s"
                                % F.fmt_sense(t))
            return problems

        check.case("other LBAs, other clients, overlay blocks read fine", others_fine)

        def qemu_io():
            """A real initiator (QEMU's iscsi driver over libiscsi) reports
            the bad range as an I/O error and reads elsewhere."""
            if not shutil.which("qemu-io"):
                print("     note: qemu-io not installed, skipped")
                return []
            opts = ("driver=iscsi,transport=tcp,portal=127.0.0.1:%d,target=%s,lun=0,"
                    "initiator-name=iqn.2024-01.test.faults:gq" % (d.port, F.TARGET))
            problems = []
            for cmd, want_ok in (("read %d 4k" % BAD_FROM, False), ("read 0 64k", True)):
                r = subprocess.run(["qemu-io", "-r", "--image-opts", "-c", cmd, opts],
                                   capture_output=True, text=True, timeout=60)
                out = (r.stdout + r.stderr).strip()
                failed = r.returncode != 0 or "failed" in out
                if want_ok and failed:
                    problems.append("qemu-io %r outside the range failed: %s" % (cmd, out[-300:]))
                if not want_ok and not ("Input/output error" in out and failed):
                    problems.append("qemu-io %r in the bad range: %s (want an I/O error)"
                                    % (cmd, out[-300:]))
            return problems

        check.case("qemu-io (libiscsi): I/O error in the range, reads elsewhere", qemu_io)

        def write_copyup():
            problems = []
            # one sector: the rest of its 4 KiB block must come from golden
            t = F.write(sa, BAD_LBA + 200, F.pattern("a-part", BAD_LBA + 200, 1))
            if t.status != 2 or F.sense_of(t) != (0x03, 0x0C, 0x00):
                problems.append("sub-block write needing a failing copy-up: %s, want 03/0C/00"
                                % F.fmt_sense(t))
            # whole blocks need no golden read: they work, and so does a flush
            for lba in (0, BAD_LBA + 400):
                data = F.pattern("a-whole", lba, 16)
                t = F.write(sa, lba, data)
                if t.status != 0:
                    problems.append("whole-block write at LBA %d after a failed copy-up: %s "
                                    "(overlay went into its error state?)" % (lba, F.fmt_sense(t)))
                    continue
                committed[A][lba] = data
            t = F.sync(sa)
            if t.status != 0:
                problems.append("SYNCHRONIZE CACHE after a failed copy-up: %s" % F.fmt_sense(t))
                for lba in (0, BAD_LBA + 400):
                    committed[A].pop(lba, None)
            data = F.pattern("b-whole", 4096, 8)
            if F.write(sb, 4096, data).status == 0 and F.sync(sb).status == 0:
                committed[B][4096] = data
            else:
                problems.append("B cannot write and flush meanwhile")
            return problems

        check.case("copy-up from the bad range: WRITE ERROR, overlay not failed", write_copyup)

        def logged():
            problems = []
            if not d.wait_log(r"raw golden\.img: read of \d+ bytes at byte \d+ failed: "
                              r"Input/output error", mark):
                problems.append("no log line naming golden.img's failed read")
            if not d.wait_log(r"scsi: \S+ LUN 0 .*initiator %s: command 0x28 at LBA %d failed: "
                              r"Input/output error; answered MEDIUM ERROR, UNRECOVERED READ ERROR"
                              % (A, BAD_LBA), mark):
                problems.append("no scsi log line for A's failed READ at LBA %d" % BAD_LBA)
            # a client retrying a bad sector must not flood the log
            m2 = d.log_mark()
            for _ in range(40):
                sb.read(BAD_LBA, 1)
            n = d.log_since(m2).count("UNRECOVERED READ ERROR")
            if n > 2 * 5:
                problems.append("40 failing READs gave %d log lines (not rate-limited)" % n)
            return problems

        check.case("the failure is logged, rate-limited", logged)
        d.disarm()

        def recovered():
            problems = []
            for who, s in ((A, sa), (B, sb)):
                t = s.read(BAD_LBA, 1024)
                want = bytearray(golden[BAD_FROM:BAD_FROM + 1024 * F.BS])
                if who == A:
                    for lba, data in committed[A].items():
                        o = (lba - BAD_LBA) * F.BS
                        if 0 <= o < len(want):
                            want[o:o + len(data)] = data
                if t.status != 0 or bytes(t.data) != bytes(want):
                    problems.append("%s after disarming: %s%s" % (who, F.fmt_sense(t),
                                    "" if t.status else ", wrong data"))
            if sz is not None:
                t = sz.read(BAD_LBA - 1024, 2048)
                if t.status != 0 or bytes(t.data) != golden[BAD_FROM - (512 << 10):BAD_FROM + (512 << 10)]:
                    problems.append("1 MiB READ in 256 KiB PDUs after disarming: %s%s"
                                    % (F.fmt_sense(t), "" if t.status else ", wrong data"))
            data = F.pattern("a-after", BAD_LBA + 200, 1)
            t = F.write(sa, BAD_LBA + 200, data)
            if t.status != 0 or F.sync(sa).status != 0:
                problems.append("the sub-block write still fails after disarming: %s"
                                % F.fmt_sense(t))
            else:
                committed[A][BAD_LBA + 200] = data
            return problems

        check.case("disarmed: reads and copy-ups work again without a restart", recovered)

        def restart():
            F.close_quietly(sa, sb, sz)
            problems = d.restart(fault_env=False)
            for who in (A, B):
                problems += F.check_committed(d, who, committed[who])
            return problems

        check.case("restart: every synced write reads back", restart)
        check.case("daemon stops cleanly", lambda: d.stop())
        check.case("golden image unchanged",
                   lambda: [] if F.sha256_file(d.image) == d.golden_sha else ["golden changed"])
    finally:
        F.close_quietly(sa, sb, sz)
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
