#!/usr/bin/env python3
"""Fault: EIO writing one client's overlay data file (its disk area on
the store goes bad), injected by build/faultinject.so.

- the WRITE gets CHECK CONDITION, MEDIUM ERROR, WRITE ERROR (03/0C/00);
  the overlay enters its documented sticky error state (logged once,
  with what the admin can do): later writes and SYNCHRONIZE CACHE fail
  the same way even with the fault gone, reads keep working, including
  of acknowledged but unflushed data;
- other clients write, flush and read meanwhile;
- the admin sees it: the log line, and `pristinectl client show`'s
  overlay_error;
- once the client's last session ends the daemon closes the failed
  overlay; its next login reopens it from what was flushed, writes work
  again, no restart (committed data intact);
- a restart reopens the overlay: every write acknowledged by a
  successful SYNCHRONIZE CACHE or FUA before the fault reads back
  exactly, unflushed ones read old or new content, writes work again;
- a client reset (--force) also brings a failed overlay back (empty, as
  a reset does), without touching other clients;
- the golden image is unchanged.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faultlib as F  # noqa: E402

I = F.I
A, B = "iqn.2024-01.test.faults:oa", "iqn.2024-01.test.faults:ob"


def main():
    why = F.prerequisites()
    if why:
        print(why)
        return F.SKIP
    check = I.Checker()
    d = F.Daemon(mib=32)
    sess = {}
    committed = {A: {}, B: {}}
    maybe = {A: {}}
    try:
        d.start()
        sess[A], sess[B] = d.session(A), d.session(B)
        golden = d.golden

        def before():
            problems = []
            for who in (A, B):
                s = sess[who]
                for k, lba in enumerate((0, 1000, 20000)):
                    data = F.pattern(who[-2:] + "-c", lba, 128)
                    t = F.write(s, lba, data, fua=(k == 2))   # the last one with FUA
                    if t.status != 0:
                        problems.append("%s write at %d: %s" % (who, lba, F.fmt_sense(t)))
                    committed[who][lba] = data
                if F.sync(s).status != 0:
                    problems.append("%s SYNCHRONIZE CACHE failed before any fault" % who)
            # acknowledged, never flushed
            data = F.pattern("oa-unflushed", 30000, 64)
            if F.write(sess[A], 30000, data).status != 0:
                problems.append("unflushed write failed")
            maybe[A][30000] = (golden[30000 * F.BS:30064 * F.BS], data)
            return problems

        check.case("setup: committed writes (SYNC and FUA), one unflushed", before)
        mark = d.log_mark()
        d.arm("ops=write path=%s/data errno=EIO" % d.overlay_dir(A))

        def write_fails():
            problems = []
            t = F.write(sess[A], 40000, F.pattern("oa-x", 40000, 128))
            if t.status != 2 or F.sense_of(t) != (0x03, 0x0C, 0x00):
                problems.append("WRITE into the failing data file: %s, want 03/0C/00"
                                % F.fmt_sense(t))
            if not d.hits().get(0):
                problems.append("the shim injected nothing")
            if not d.wait_log(r"overlay \S+:oa: data write failed: Input/output error; writes and "
                              r"flushes refused", mark):
                problems.append("no log line for the overlay's failure")
            if not d.wait_log(r"initiator %s: command 0x2a at LBA 40000 failed: Input/output "
                              r"error; answered MEDIUM ERROR, WRITE ERROR" % A, mark):
                problems.append("no scsi log line for the failed WRITE")
            return problems

        check.case("WRITE: MEDIUM ERROR / WRITE ERROR (03/0C/00), logged", write_fails)
        d.disarm()

        def sticky():
            problems = []
            s = sess[A]
            t = F.write(s, 50000, F.pattern("oa-y", 50000, 8))
            if t.status != 2 or F.sense_of(t) != (0x03, 0x0C, 0x00):
                problems.append("WRITE after the fault is gone: %s, want 03/0C/00 (sticky error "
                                "state, overlay.h)" % F.fmt_sense(t))
            t = F.sync(s)
            if t.status != 2 or F.sense_of(t) != (0x03, 0x0C, 0x00):
                problems.append("SYNCHRONIZE CACHE in the error state: %s, want 03/0C/00"
                                % F.fmt_sense(t))
            for lba, data in committed[A].items():
                t = s.read(lba, len(data) // F.BS)
                if t.status != 0 or bytes(t.data) != data:
                    problems.append("READ of committed LBA %d in the error state: %s"
                                    % (lba, F.fmt_sense(t)))
            t = s.read(30000, 64)
            if t.status != 0 or bytes(t.data) != maybe[A][30000][1]:
                problems.append("READ of the unflushed write in the error state: %s"
                                % F.fmt_sense(t))
            return problems

        check.case("error state: writes and flushes refused, reads work", sticky)

        def others():
            problems = []
            s = sess[B]
            data = F.pattern("ob-during", 60000, 128)
            t = F.write(s, 60000, data)
            t2 = F.sync(s)
            if t.status != 0 or t2.status != 0:
                problems.append("B write/sync meanwhile: %s / %s" % (F.fmt_sense(t), F.fmt_sense(t2)))
            else:
                committed[B][60000] = data
            t = s.read(0, 128)
            if t.status != 0 or bytes(t.data) != committed[B][0]:
                problems.append("B read meanwhile: %s" % F.fmt_sense(t))
            return problems

        check.case("other clients keep working", others)

        def admin():
            rc, out = d.ctl("client", "show", A)
            if rc != 0 or not isinstance(out, dict):
                return ["pristinectl client show failed: %r" % (out,)]
            if not out.get("overlay_error") or "data write failed" not in out["overlay_error"]:
                return ["client show says overlay_error %r for a failed overlay"
                        % out["overlay_error"]]
            return []

        check.case("admin: client show", admin)

        def events():
            # The event log (console): the overlay's error state once, and
            # the error answered to A once - not once per failing command.
            rc, out = d.ctl("events")
            if rc != 0 or not isinstance(out, dict):
                return ["pristinectl events failed: %r" % (out,)]
            errs = [e for e in out["events"] if e["kind"] == "error"]
            sticky_ev = [e for e in errs if ":oa: data write failed" in e["text"]]
            scsi_ev = [e for e in errs if e.get("client") == A]
            problems = []
            if len(sticky_ev) != 1:
                problems.append("%d events of the overlay's error state, want 1: %r"
                                % (len(sticky_ev), errs))
            if len(scsi_ev) != 1 or "Input/output error; answered MEDIUM ERROR" not in scsi_ev[0]["text"]:
                problems.append("%d events of errors answered to A, want 1 (EIO, MEDIUM ERROR): %r"
                                % (len(scsi_ev), errs))
            return problems

        check.case("admin: the event log holds the error once", events)

        def last_session_ends():
            # Not one session of A left: the daemon closes the failed
            # overlay, and A's next login reopens it from what was flushed.
            problems = []
            mark3 = d.log_mark()
            F.close_quietly(sess.pop(A))
            if not d.wait_log(r"client %s: its overlay failed earlier \(data write: Input/output "
                              r"error\); closed now that its last session ended" % A, mark3):
                return ["the failed overlay was not closed when its last session ended"]
            rc, out = d.ctl("client", "show", A)
            if rc != 0 or out.get("overlay_error"):
                problems.append("client show after the close: %r" % (out,))
            problems += F.check_committed(d, A, committed[A], maybe[A])
            s = d.session(A)
            sess[A] = s
            data = F.pattern("oa-reopened", 45000, 64)
            t, t2 = F.write(s, 45000, data), F.sync(s)
            if t.status != 0 or t2.status != 0:
                problems.append("A cannot write after its overlay reopened: %s / %s"
                                % (F.fmt_sense(t), F.fmt_sense(t2)))
            else:
                committed[A][45000] = data
            return problems

        check.case("last session ends: the overlay reopens without a restart", last_session_ends)

        def restart():
            F.close_quietly(*sess.values())
            sess.clear()
            problems = d.restart(fault_env=True)
            problems += F.check_committed(d, A, committed[A], maybe[A])
            problems += F.check_committed(d, B, committed[B])
            s = d.session(A)
            sess[A] = s
            data = F.pattern("oa-after", 40000, 128)
            t = F.write(s, 40000, data)
            t2 = F.sync(s)
            if t.status != 0 or t2.status != 0:
                problems.append("A cannot write after the restart: %s / %s"
                                % (F.fmt_sense(t), F.fmt_sense(t2)))
            else:
                committed[A][40000] = data
            if "cannot be trusted" in d.log(since_start=True):
                problems.append("an overlay was quarantined after the restart")
            return problems

        check.case("restart: committed writes intact, writes work again", restart)

        def reset():
            problems = []
            mark2 = d.log_mark()
            d.arm("ops=write path=%s/data errno=EIO" % d.overlay_dir(A))
            t = F.write(sess[A], 70000, F.pattern("oa-z", 70000, 8))
            if t.status != 2:
                problems.append("second fault did not fail the write: %s" % F.fmt_sense(t))
            d.disarm()
            rc, out = d.ctl("client", "reset", A, "--force")
            if rc != 0:
                return problems + ["client reset --force failed: %r" % (out,)]
            F.close_quietly(sess.pop(A))
            if not d.wait_log(r"client %s reset \(admin\): overlay discarded" % A, mark2):
                problems.append("no log line for the reset")
            s = d.session(A)
            sess[A] = s
            data = F.pattern("oa-reset", 0, 128)
            t, t2 = F.write(s, 0, data), F.sync(s)
            if t.status != 0 or t2.status != 0:
                problems.append("writes after the reset: %s / %s" % (F.fmt_sense(t), F.fmt_sense(t2)))
            t = s.read(1000, 128)
            if bytes(t.data) != golden[1000 * F.BS:1128 * F.BS]:
                problems.append("after the reset A does not read the golden image")
            committed[A] = {0: data}
            F.close_quietly(sess.pop(A))
            problems += F.check_committed(d, B, committed[B])
            return problems

        check.case("reset --force of the failed client brings it back", reset)

        def final():
            problems = d.restart(fault_env=False)
            for who in (A, B):
                problems += F.check_committed(d, who, committed[who])
            problems += d.stop()
            if F.sha256_file(d.image) != d.golden_sha:
                problems.append("golden image changed")
            return problems

        check.case("restart without faults: all committed data, golden unchanged", final)
    finally:
        F.close_quietly(*sess.values())
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
