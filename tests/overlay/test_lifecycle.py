#!/usr/bin/env python3
"""A client's overlay through its life, against a live pristined:

- quota: with --quota 1M a client's writes succeed until the overlay is
  full, then fail with CHECK CONDITION, DATA PROTECT, SPACE ALLOCATION
  FAILED WRITE PROTECT (27h/07h); its reads and overwrites of blocks it
  holds keep working; a warning is logged at 80%; another client still
  writes; the golden image never changes;
- reset: refused while the client is online unless forced; forced, it ends
  the session, and the client then reads golden content again; reset time
  of a nearly empty vs a full overlay is printed;
- restart: overlays persist; an overlay whose metadata was corrupted while
  the daemon was down is reported, moved to quarantine/ (not deleted) and
  the client starts from a fresh overlay; other clients are unaffected.
Exit 0 pass, 1 fail, 77 skip.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

A = "iqn.2024-01.test.pristine:pc-a"
B = "iqn.2024-01.test.pristine:pc-b"
BS = 512
CTL = os.path.join(I.TOP, "build", "pristinectl")


def ctl(state, *args):
    r = subprocess.run([CTL, "--state", state, "--json"] + list(args), capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout, r.stderr


def write(s, lba, data, fua=False):
    cdb = bytearray(I.cdb_write10(lba, len(data) // BS))
    if fua:
        cdb[1] |= 0x08
    return s.command(bytes(cdb), write_data=data)


def sense_of(t):
    sd = t.sense
    if len(sd) >= 14 and (sd[0] & 0x7f) in (0x70, 0x71):
        return sd[2] & 0x0f, sd[12], sd[13]
    if len(sd) >= 4 and (sd[0] & 0x7f) in (0x72, 0x73):
        return sd[1] & 0x0f, sd[2], sd[3]
    return None


def main():
    if not os.access(CTL, os.X_OK):
        print("build/pristinectl not built")
        return 77
    d = I.Daemon(mib=16, writable=True, extra=["--quota", "1M", "--nop-interval", "0"])
    if not d.available():
        print("build/asan/pristined not built")
        return 77
    check = I.Checker()
    d.start()
    golden = d.expected
    sha0 = hashlib.sha256(golden).hexdigest()
    state = d.state
    sessions = {}

    def sess(name):
        s = d.session(initiator_name=name)
        s.login()
        sessions[name] = s
        return s

    try:
        def quota():
            problems = []
            s = sess(A)
            chunk = bytes([0xa5]) * (64 * 1024)
            full_at = None
            for i in range(32):                      # 2 MiB > the 1 MiB quota
                t = write(s, i * 128, chunk)
                if t.status != 0:
                    full_at = i
                    sk = sense_of(t)
                    if t.status != 2 or sk != (0x07, 0x27, 0x07):
                        problems.append("full overlay: status %r sense %r, want CHECK CONDITION "
                                        "07/27/07" % (t.status, sk))
                    break
            if full_at is None:
                return ["2 MiB written with a 1 MiB quota and no error"]
            print("     overlay of A full after %d KiB" % (full_at * 64))
            if full_at < 14 or full_at > 16:
                problems.append("quota hit after %d KiB, expected about 1024" % (full_at * 64))
            t = s.read(0, 128)
            if bytes(t.data) != chunk:
                problems.append("read of a held block failed or wrong after the overlay filled")
            t = write(s, 0, bytes([0x5a]) * 4096)
            if t.status != 0:
                problems.append("overwrite of a held block failed on a full overlay: %r" % t.status)
            t = s.read((full_at + 1) * 128, 8)
            if bytes(t.data) != golden[(full_at + 1) * 128 * BS:((full_at + 1) * 128 + 8) * BS]:
                problems.append("unwritten blocks of a full overlay do not read golden")
            sb = sess(B)
            t = write(sb, 0, bytes([0xbb]) * 65536)
            if t.status != 0:
                problems.append("client B cannot write while A's overlay is full")
            if "80%" not in d.log():
                problems.append("no warning in the log at 80% of the quota")
            return problems

        def isolation():
            t = sessions[B].read(200, 8)
            if bytes(t.data) != golden[200 * BS:208 * BS]:
                return ["B sees A's writes"]
            t = sessions[A].read(0, 1)
            if bytes(t.data)[:16] != bytes([0x5a]) * 16:
                return ["A does not see its own write"]
            return []

        def reset_online():
            rc, out, err = ctl(state, "client", "reset", A)
            problems = []
            if rc != 1 or "--force" not in (out + err):
                problems.append("reset of an online client: rc %d, %r (want refusal naming --force)"
                                % (rc, (out + err)[:200]))
            t = sessions[A].read(0, 1)
            if bytes(t.data)[:16] != bytes([0x5a]) * 16:
                problems.append("refused reset changed the overlay")
            rc, out, err = ctl(state, "client", "reset", A, "--force")
            if rc != 0:
                return problems + ["forced reset failed: %r" % (out + err)]
            secs_full = json.loads(out).get("seconds")
            try:
                sessions[A].read(0, 1, timeout=5)
                problems.append("A's session still works after a forced reset")
            except I.ISCSIError:
                pass
            sessions.pop(A).close()
            s = sess(A)
            t = s.read(0, 2048)
            if bytes(t.data) != golden[:2048 * BS]:
                problems.append("after reset A does not read golden content")
            # Reset time: a 4 KiB overlay, for comparison with the full one.
            write(s, 0, bytes([1]) * 4096)
            s.logout()
            sessions.pop(A).close()
            rc, out, err = ctl(state, "client", "reset", A)
            if rc != 0:
                return problems + ["reset of an offline client failed: %r" % (out + err)]
            secs_small = json.loads(out).get("seconds")
            print("     reset: overlay with ~1 MiB %.4fs, with 4 KiB %.4fs" % (secs_full, secs_small))
            return problems

        def restart_and_quarantine():
            problems = []
            for s in list(sessions.values()):
                s.logout()
                s.close()
            sessions.clear()
            problems += d.stop()
            # Corrupt B's overlay metadata while the daemon is down.
            dirs = glob.glob(os.path.join(state, "overlays", "*pc-b*"))
            if len(dirs) != 1:
                return ["expected one overlay directory for B, found %r" % dirs]
            info = os.path.join(dirs[0], "info")
            with open(info, "r+b") as f:
                f.seek(8)
                b = f.read(1)
                f.seek(8)
                f.write(bytes([b[0] ^ 0xff]))
            d.proc = None
            restart(d)
            log = d.log()
            if "cannot be trusted" not in log:
                problems.append("corrupt overlay of B not reported")
            q = glob.glob(os.path.join(state, "quarantine", "*pc-b*"))
            if len(q) != 1 or not os.path.exists(os.path.join(q[0], "data")):
                problems.append("B's overlay not kept in quarantine/: %r" % q)
            sb = sess(B)
            t = sb.read(0, 128)
            if bytes(t.data) != golden[:128 * BS]:
                problems.append("B does not start from a fresh overlay")
            sa = sess(A)
            t = sa.read(0, 8)
            if bytes(t.data) != golden[:8 * BS]:
                problems.append("A (reset before the restart) does not read golden content")
            return problems

        def two_sessions():
            # iPXE's session stays open while the OS logs in with another ISID.
            problems = []
            ipxe = d.session(initiator_name="iqn.2024-01.test.pristine:pc-c")
            ipxe.login()
            os_s = d.session(initiator_name="iqn.2024-01.test.pristine:pc-c")
            os_s.login()
            t = write(os_s, 300, bytes([0xc1]) * 2048)
            if t.status != 0:
                problems.append("write through the second session failed")
            t = ipxe.read(300, 4)
            if bytes(t.data) != bytes([0xc1]) * 2048:
                problems.append("the first session does not see the second one's write")
            t = write(ipxe, 301, bytes([0xc2]) * 512)
            t = os_s.read(300, 4)
            if bytes(t.data) != bytes([0xc1]) * 512 + bytes([0xc2]) * 512 + bytes([0xc1]) * 1024:
                problems.append("the second session does not see the first one's write")
            # The LU promises a volatile write cache and zeros after UNMAP.
            t = os_s.command(bytes([0x1a, 0x08, 0x08, 0, 0xff, 0]), read_len=255)
            page = bytes(t.data)[4:]
            if len(page) < 3 or page[0] & 0x3f != 0x08 or not page[2] & 0x04:
                problems.append("caching mode page does not report WCE=1: %r" % page[:4])
            t = os_s.command(bytes([0x9e, 0x10] + [0] * 8 + [0, 0, 0, 32, 0, 0]), read_len=32)
            rc16 = bytes(t.data)
            if len(rc16) < 15 or not rc16[14] & 0x80 or not rc16[14] & 0x40:
                problems.append("READ CAPACITY(16) does not report LBPME and LBPRZ: %r" % rc16[12:16])
            unmap = bytes([0, 22, 0, 16]) + bytes(4) + (300).to_bytes(8, "big") + (4).to_bytes(4, "big") + bytes(4)
            t = os_s.command(bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), write_data=unmap)
            if t.status != 0:
                problems.append("UNMAP failed: %r" % t.status)
            t = ipxe.read(300, 4)
            if bytes(t.data) != bytes(2048):
                problems.append("unmapped blocks do not read zeros from the other session")
            ipxe.close()
            os_s.logout()
            os_s.close()
            return problems

        check.case("two sessions of one initiator share one overlay", two_sessions)
        check.case("quota: full overlay fails writes with SPACE ALLOCATION FAILED", quota)
        check.case("clients are isolated", isolation)
        check.case("reset: refused online, forced ends the session, golden after", reset_online)
        check.case("restart: corrupt overlay quarantined, others intact", restart_and_quarantine)
        for s in sessions.values():
            s.close()
        problems = d.stop()
        check.case("clean exit", lambda: problems)
        with open(d.image, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == sha0
        check.case("golden image unchanged", lambda: [] if same else ["golden image changed"])
    finally:
        d.cleanup()
    return check.finish()


def restart(d):
    """Start the same daemon again on its state directory."""
    port = d.port
    seen = d.log().count("listening")
    args = [d.binary, "--image", d.image, "--listen", "127.0.0.1:%d" % port, "--state", d.state] + d.extra
    d.logf = open(d.log_path, "ab")
    d.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=d.logf, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if d.log().count("listening") > seen:
            return
        time.sleep(0.05)
    raise I.ISCSIError("pristined did not restart")


if __name__ == "__main__":
    sys.exit(main())
