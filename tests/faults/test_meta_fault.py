#!/usr/bin/env python3
"""Fault: the overlay's metadata writes and syncs fail (its `log`, the
fsync of `data`, the `map` checkpoint), injected by build/faultinject.so,
one client per kind of fault so each is seen on its own:

  ma  EIO writing the log record of a SYNCHRONIZE CACHE
  mb  EIO from fsync of the data file
  mc  EIO after a torn log write (24 bytes landed)
  me  EIO from fsync of the log behind a FUA WRITE
  mf  ENOSPC writing the log record (the store full for metadata)
  mg  ENOSPC after a torn log write (40 bytes landed)
  md  EIO writing map.tmp for the checkpoint at shutdown
  mh  ENOSPC writing map.tmp for the checkpoint at shutdown

EIO: the command gets MEDIUM ERROR, WRITE ERROR (03/0C/00), the overlay
enters its sticky error state (logged), reads keep working.  ENOSPC: the
command gets DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT
(07/27/07) and the overlay does NOT fail: once space is back a flush
logs the same writes (nothing cached is dropped), and the log was cut
back so a torn record never reaches the disk.  At shutdown a checkpoint
that finds no space falls back to the log, one that gets EIO is logged.
Other clients are not affected.  After a restart without faults every
write acknowledged by a successful SYNCHRONIZE CACHE or FUA reads back
exactly, no overlay is quarantined, failed overlays accept writes again,
and the golden image is unchanged.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

I = F.I
P = "iqn.2024-01.test.faults:"
NAMES = ["ma", "mb", "mc", "md", "me", "mf", "mg", "mh"]
WRITE_ERROR = (0x03, 0x0C, 0x00)
NO_SPACE = (0x07, 0x27, 0x07)


def main():
    why = F.prerequisites()
    if why:
        print(why)
        return F.SKIP
    check = I.Checker()
    d = F.Daemon(mib=32)
    sess = {}
    committed = {n: {} for n in NAMES}
    unflushed = {n: {} for n in NAMES}     # lba -> (old, new)
    try:
        d.start()
        golden = d.golden
        for n in NAMES:
            sess[n] = d.session(P + n)

        def setup():
            problems = []
            for n in NAMES:
                s = sess[n]
                for lba in (0, 2048):
                    data = F.pattern(n + "-c", lba, 64)
                    if F.write(s, lba, data).status != 0:
                        problems.append("%s: write failed before any fault" % n)
                    committed[n][lba] = data
                if F.sync(s).status != 0:
                    problems.append("%s: SYNCHRONIZE CACHE failed before any fault" % n)
                data = F.pattern(n + "-u", 8192, 64)
                if F.write(s, 8192, data).status != 0:
                    problems.append("%s: unflushed write failed" % n)
                unflushed[n][8192] = (golden[8192 * F.BS:8256 * F.BS], data)
            return problems

        check.case("setup: committed and unflushed writes on 8 clients", setup)

        def eio_case(n, rule, cmd, step):
            """Arm rule, run cmd on n's session, expect 03/0C/00 and the
            sticky error logged with step; then disarm and check the
            state."""
            def run():
                problems = []
                mark = d.log_mark()
                d.arm(rule)
                t = cmd(sess[n])
                if t.status != 2 or F.sense_of(t) != WRITE_ERROR:
                    problems.append("%s: %s, want CHECK CONDITION 03/0C/00" % (n, F.fmt_sense(t)))
                if not d.hits().get(0):
                    problems.append("%s: the shim injected nothing" % n)
                d.disarm()
                if not d.wait_log(r"overlay \S+:%s: %s failed: Input/output error; writes and "
                                  r"flushes refused" % (n, step), mark):
                    problems.append("%s: no log line '%s failed'" % (n, step))
                t = F.write(sess[n], 100, F.pattern(n + "-late", 100, 8))
                if t.status != 2 or F.sense_of(t) != WRITE_ERROR:
                    problems.append("%s: WRITE in the error state: %s" % (n, F.fmt_sense(t)))
                t = sess[n].read(0, 64)
                if t.status != 0 or bytes(t.data) != committed[n][0]:
                    problems.append("%s: READ in the error state: %s" % (n, F.fmt_sense(t)))
                return problems
            return run

        ov = d.overlay_dir
        check.case("log write EIO: SYNCHRONIZE CACHE gets 03/0C/00, sticky",
                   eio_case("ma", "ops=write path=%s/log errno=EIO" % ov(P + "ma"), F.sync,
                            "log append"))
        check.case("data fsync EIO: SYNCHRONIZE CACHE gets 03/0C/00, sticky",
                   eio_case("mb", "ops=sync path=%s/data errno=EIO" % ov(P + "mb"), F.sync,
                            "data sync"))
        check.case("torn log write + EIO: 03/0C/00, sticky",
                   eio_case("mc", "ops=write path=%s/log errno=EIO torn=24" % ov(P + "mc"),
                            F.sync, "log append"))

        def fua(s):
            return F.write(s, 4096, F.pattern("me-fua", 4096, 8), fua=True)

        check.case("log fsync EIO behind a FUA WRITE: 03/0C/00, sticky",
                   eio_case("me", "ops=sync path=%s/log errno=EIO" % ov(P + "me"), fua,
                            "log append"))

        def enospc_case(n, rule):
            def run():
                problems = []
                mark = d.log_mark()
                d.arm(rule)
                t = F.sync(sess[n])
                if t.status != 2 or F.sense_of(t) != NO_SPACE:
                    problems.append("%s: SYNCHRONIZE CACHE with no space for the log: %s, want "
                                    "07/27/07" % (n, F.fmt_sense(t)))
                if not d.hits().get(0):
                    problems.append("%s: the shim injected nothing" % n)
                if not d.wait_log(r"overlay \S+:%s: no space to log a flush" % n, mark):
                    problems.append("%s: no log line about the flush that found no space" % n)
                if re.search(r"overlay \S+:%s: \S+( \S+)? failed" % n, d.log_since(mark)):
                    problems.append("%s: lack of space put the overlay in its error state" % n)
                # writes of held blocks go on while the store is "full"
                data = F.pattern(n + "-w", 0, 64)
                t = F.write(sess[n], 0, data)
                if t.status != 0:
                    problems.append("%s: overwrite while the log has no space: %s"
                                    % (n, F.fmt_sense(t)))
                d.disarm()
                t = F.sync(sess[n])
                if t.status != 0:
                    problems.append("%s: SYNCHRONIZE CACHE once space is back: %s"
                                    % (n, F.fmt_sense(t)))
                else:
                    # the flush that failed handed its blocks back: all committed now
                    committed[n][0] = data
                    committed[n][8192] = unflushed[n].pop(8192)[1]
                return problems
            return run

        check.case("log write ENOSPC: 07/27/07, not sticky, flushed once space is back",
                   enospc_case("mf", "ops=write path=%s/log errno=ENOSPC" % ov(P + "mf")))
        check.case("torn log write + ENOSPC: cut back, not sticky",
                   enospc_case("mg", "ops=write path=%s/log errno=ENOSPC torn=40" % ov(P + "mg")))

        def others():
            problems = []
            for n in ("md", "mh"):
                data = F.pattern(n + "-more", 16384, 128)
                t, t2 = F.write(sess[n], 16384, data), F.sync(sess[n])
                if t.status != 0 or t2.status != 0:
                    problems.append("%s (no fault) write/sync meanwhile: %s / %s"
                                    % (n, F.fmt_sense(t), F.fmt_sense(t2)))
                else:
                    committed[n][16384] = data
                    committed[n][8192] = unflushed[n].pop(8192)[1]
            return problems

        check.case("clients without a fault keep working", others)

        def shutdown():
            problems = []
            F.close_quietly(*sess.values())
            sess.clear()
            mark = d.log_mark()
            # dirty blocks for the final checkpoint
            for n in ("md", "mh"):
                s = d.session(P + n)
                data = F.pattern(n + "-last", 24576, 64)
                if F.write(s, 24576, data).status != 0 or F.sync(s).status != 0:
                    problems.append("%s: last write failed" % n)
                committed[n][24576] = data
                F.close_quietly(s)
            d.arm("ops=write path=%s/map.tmp errno=EIO" % ov(P + "md"),
                  "ops=write path=%s/map.tmp errno=ENOSPC" % ov(P + "mh"))
            problems += d.stop()
            log = d.log_since(mark)
            if not re.search(r"overlay \S+:md: checkpoint failed: Input/output error", log):
                problems.append("md: no log line for the failed checkpoint")
            if not re.search(r"overlay \S+:mh: no space for a checkpoint of the map", log):
                problems.append("mh: no log line for the checkpoint without space")
            if re.search(r"client %smh: overlay closed with an error" % P, log):
                problems.append("mh: a checkpoint without space failed the close "
                                "(the log still had room)")
            d.disarm()
            return problems

        check.case("shutdown: checkpoint EIO logged, checkpoint ENOSPC falls back to the log",
                   shutdown)

        def restart():
            mark = d.log_mark()
            d.start(fault_env=False)
            problems = []
            for n in NAMES:
                problems += F.check_committed(d, P + n, committed[n], unflushed[n])
            log = d.log_since(mark)
            if "cannot be trusted" in log:
                problems.append("an overlay was quarantined")
            if re.search(r"overlays/%smg: log has a torn tail" % P, log):
                problems.append("mg: the torn ENOSPC append was left in the log")
            for n in ("ma", "mb", "mc", "me"):
                s = d.session(P + n)
                data = F.pattern(n + "-again", 40000, 16)
                t, t2 = F.write(s, 40000, data), F.sync(s)
                if t.status != 0 or t2.status != 0:
                    problems.append("%s: still failing after the restart: %s / %s"
                                    % (n, F.fmt_sense(t), F.fmt_sense(t2)))
                else:
                    committed[n][40000] = data
                F.close_quietly(s)
            return problems

        check.case("restart: every committed write intact, failed overlays writable again",
                   restart)

        def final():
            problems = d.restart(fault_env=False)
            for n in NAMES:
                problems += F.check_committed(d, P + n, committed[n], unflushed[n])
            problems += d.stop()
            if F.sha256_file(d.image) != d.golden_sha:
                problems.append("golden image changed")
            return problems

        check.case("second restart: still intact; golden unchanged", final)
    finally:
        F.close_quietly(*sess.values())
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
