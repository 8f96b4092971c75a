#!/usr/bin/env python3
"""NOP-In keepalive: pings go out on idle sessions, and an initiator that
never answers them (as iPXE never does) keeps a working session.

The daemon runs with --nop-interval 1.  One session stays idle for 4 s,
reading but never answering the NOP-In pings; it must have received pings
with a valid TTT and StatSN not consumed, and still read correctly after.
A second session answers its pings and must also keep working.
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402


def collect_pings(s, seconds, answer):
    pings = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            p = s.conn.recv_pdu(timeout=max(0.05, deadline - time.monotonic()))
        except I.Timeout:
            break
        if p.opcode != 0x20:
            raise I.ISCSIError("unexpected %r while idle" % p)
        pings.append(p)
        if answer:
            bhs = I.build_nop_out(0xFFFFFFFF, p.ttt, s.cmdsn, s.expstatsn, 0, immediate=True)
            s.conn.send_pdu(bhs)
    return pings


def main():
    d = I.Daemon(mib=4, extra=["--nop-interval", "1"])
    if not d.available():
        print("build/asan/pristined is not built")
        return 77
    check = I.Checker()
    d.start()
    try:
        def idle(answer):
            s = d.session(initiator_name="iqn.2024-01.test.pristine:idle-%d" % answer)
            s.login()
            s.read(0, 1)
            pings = collect_pings(s, 4.0, answer)
            problems = []
            if len(pings) < 2:
                problems.append("only %d NOP-In pings in 4 s with --nop-interval 1" % len(pings))
            for p in pings:
                if p.itt != 0xFFFFFFFF or p.ttt == 0xFFFFFFFF:
                    problems.append("ping with ITT 0x%08x TTT 0x%08x (want ITT 0xffffffff, a real TTT)"
                                    % (p.itt, p.ttt))
                if p.statsn != s.expstatsn:
                    problems.append("ping StatSN %d, expected %d (pings must not consume StatSN)"
                                    % (p.statsn, s.expstatsn))
            t = s.read(7, 2)
            if bytes(t.data) != d.expected[7 * 512:9 * 512]:
                problems.append("wrong data after idling")
            s.logout()
            s.close()
            return problems

        check.case("idle session that never answers pings keeps working", idle, False)
        check.case("idle session that answers pings keeps working", idle, True)
        problems = d.stop()
        check.case("clean exit", lambda: problems)
    finally:
        d.cleanup()
    return check.finish()


if __name__ == "__main__":
    sys.exit(main())
