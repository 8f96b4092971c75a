#!/usr/bin/env python3
"""Command-line uses of iscsi_initiator.py for shell tests.

  iscsi_tool.py hold PORT TARGET INITIATOR
      log in, print "READY" (flushed), keep the session until stdin closes
      or 120 s pass (answers the target's NOPs meanwhile), then log out.
  iscsi_tool.py readloop PORT TARGET INITIATOR EXPECTED STOPFILE [MAXSECS]
      read the whole disk again and again in 256 KiB commands, comparing
      with the file EXPECTED, until STOPFILE exists (then one more full
      pass) or MAXSECS (default 120) pass; prints "PASSES n" and exits 0,
      or prints the first error and exits 1.  Prints "READY" after the
      first full pass.
Exit 2 on a usage error."""
import os
import select
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_initiator as I  # noqa: E402


def session(port, target, ini):
    s = I.Session("127.0.0.1", int(port), ini, target_name=target, timeout=20)
    s.login()
    s.ready()
    return s


def hold(port, target, ini):
    s = session(port, target, ini)
    print("READY", flush=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        r, _, _ = select.select([sys.stdin], [], [], 0.5)
        if r and not sys.stdin.buffer.read1(4096):
            break
        try:
            s.nop(timeout=10)
        except I.ISCSIError as e:
            print("session ended: %s" % e, flush=True)
            return 1
    s.logout()
    return 0


def readloop(port, target, ini, expected, stopfile, maxsecs="120"):
    want = open(expected, "rb").read()
    chunk = 512 * 512
    s = session(port, target, ini)
    passes, stopping = 0, False
    deadline = time.monotonic() + float(maxsecs)
    while time.monotonic() < deadline:
        if os.path.exists(stopfile):
            stopping = True
        for off in range(0, len(want), chunk):
            n = min(chunk, len(want) - off)
            try:
                t = s.read(off // 512, n // 512)
            except I.ISCSIError as e:
                print("read error at byte %d on pass %d: %s" % (off, passes + 1, e), flush=True)
                return 1
            if t.status != 0 or bytes(t.data) != want[off:off + n]:
                print("pass %d: bytes %d..%d differ from %s (status %r)"
                      % (passes + 1, off, off + n, expected, t.status), flush=True)
                return 1
        passes += 1
        if passes == 1:
            print("READY", flush=True)
        if stopping:
            s.logout()
            print("PASSES %d" % passes, flush=True)
            return 0
    print("no stop file within %s s after %d passes" % (maxsecs, passes), flush=True)
    return 1


def main(argv):
    if len(argv) == 4 and argv[0] == "hold":
        return hold(*argv[1:])
    if len(argv) in (6, 7) and argv[0] == "readloop":
        return readloop(*argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
