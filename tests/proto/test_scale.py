#!/usr/bin/env python3
"""Many sessions at once, and a client that stops reading.

1. 256 sessions are logged in at the same time (each with its own initiator
   name and ISID); every one then reads a different block and checks it.
2. A "stalled" client sends 64 READs of 1 MiB and never reads its socket, so
   the daemon's sends to it block.  While it sits there, 32 other sessions
   must each complete reads within a short, bounded time: a slow client
   stalls only itself.
3. SIGTERM with the stalled client still connected: the daemon must exit
   cleanly (status 0, no sanitizer report) within the time limit.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

SESSIONS = 256
BLOCK = 512


def main():
    d = I.Daemon(mib=16)
    if not d.available():
        print("build/asan/pristined is not built")
        return 77
    check = I.Checker()
    d.start()
    sessions = []
    stalled = None
    try:
        def login_many():
            for i in range(SESSIONS):
                s = d.session(initiator_name="iqn.2024-01.test.pristine:scale-%03d" % i, timeout=20)
                s.login()
                sessions.append(s)
            if len(sessions) != SESSIONS:
                return ["only %d sessions logged in" % len(sessions)]
            return []

        def read_all():
            problems = []
            blocks = len(d.expected) // BLOCK
            for i, s in enumerate(sessions):
                lba = (i * 97) % blocks
                t = s.read(lba, 1)
                if bytes(t.data) != d.expected[lba * BLOCK:(lba + 1) * BLOCK]:
                    problems.append("session %d: wrong data at LBA %d" % (i, lba))
            return problems

        def stalled_client():
            nonlocal stalled
            stalled = d.session(initiator_name="iqn.2024-01.test.pristine:stalled")
            stalled.login()
            # 64 x 1 MiB reads, never read back: the daemon blocks sending.
            for i in range(64):
                stalled.submit(I.cdb_read10((i * 2048) % 30000, 2048), read_len=2048 * BLOCK)
            time.sleep(1.0)
            problems = []
            worst = 0.0
            for i, s in enumerate(sessions[:32]):
                t0 = time.monotonic()
                t = s.read(i * 3, 8, timeout=5)
                dt = time.monotonic() - t0
                worst = max(worst, dt)
                if bytes(t.data) != d.expected[i * 3 * BLOCK:(i * 3 + 8) * BLOCK]:
                    problems.append("session %d: wrong data while a client is stalled" % i)
            print("worst read latency beside the stalled client: %.3fs" % worst)
            if worst > 2.0:
                problems.append("a read took %.2fs beside a stalled client" % worst)
            return problems

        def still_serving():
            s = d.session(initiator_name="iqn.2024-01.test.pristine:late")
            s.login()
            t = s.read(5, 1)
            s.logout()
            s.close()
            return [] if bytes(t.data) == d.expected[5 * BLOCK:6 * BLOCK] else ["wrong data"]

        check.case("%d sessions log in at once" % SESSIONS, login_many)
        check.case("each of them reads its own block", read_all)
        check.case("a stalled client does not stall the others", stalled_client)
        check.case("new logins work with %d sessions open" % (len(sessions) + 1), still_serving)
        for s in sessions:
            s.close()
        problems = d.stop(timeout=20)
        check.case("SIGTERM with a stalled client: clean exit", lambda: problems)
    finally:
        if stalled:
            stalled.close()
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
