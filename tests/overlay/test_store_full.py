#!/usr/bin/env python3
"""The state file system fills up (a 48 MiB tmpfs), once with
--store-floor 16M and once with no floor (the kernel's ENOSPC):

- writes that need new space fail with CHECK CONDITION, DATA PROTECT,
  SPACE ALLOCATION FAILED WRITE PROTECT (27h/07h), for every client;
- reads and overwrites of blocks already held keep working;
- after a flush and a daemon restart every overlay opens (none is taken
  for corrupt) and holds every acknowledged, flushed write;
- the golden image (outside the tmpfs) never changes.
Needs root for the tmpfs mount; skips (77) otherwise.
"""
import hashlib
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

BS = 512


def write(s, lba, data):
    return s.command(bytes(I.cdb_write10(lba, len(data) // BS)), write_data=data)


def sense_of(t):
    sd = t.sense
    if len(sd) >= 14 and (sd[0] & 0x7f) in (0x70, 0x71):
        return sd[2] & 0x0f, sd[12], sd[13]
    return None


def run(floor):
    binary = os.environ.get("PRISTINED", os.path.join(I.TOP, "build", "asan", "pristined"))
    if not os.access(binary, os.X_OK):
        print("pristined not built")
        return 77
    tmp = tempfile.mkdtemp(prefix="pristine-full.")
    mnt = os.path.join(tmp, "store")
    os.mkdir(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", mnt],
                      capture_output=True).returncode != 0:
        print("cannot mount a tmpfs (not root?)")
        return 77
    check = I.Checker()
    image = os.path.join(tmp, "golden.img")
    golden = I.image_bytes(64)
    with open(image, "wb") as f:
        f.write(golden)
    sha0 = hashlib.sha256(golden).hexdigest()
    port = I.free_port()
    log_path = os.path.join(tmp, "pristined.log")
    args = [binary, "--image", image, "--listen", "127.0.0.1:%d" % port, "--state",
            os.path.join(mnt, "state"), "--store-floor", floor, "--nop-interval", "0"]
    procs = []

    def start():
        logf = open(log_path, "ab")
        p = subprocess.Popen(args, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        procs.append(p)
        return I.wait_listening(p, port, log_path)

    acked = {}    # (client, lba) -> 64 KiB written and flushed
    try:
        start()
        sess = {}
        for name in ("a", "b"):
            s = I.Session("127.0.0.1", port, "iqn.2024-01.test.pristine:full-" + name,
                          target_name="iqn.2026-11.org.pristine:golden", lun=0)
            s.login()
            sess[name] = s

        def fill():
            problems = []
            full = {}
            for i in range(400):                    # up to 50 MiB, more than fits
                for name, s in sess.items():
                    if name in full:
                        continue
                    data = bytes([0x10 + i % 200]) * 65536
                    t = write(s, i * 128, data)
                    if t.status == 0:
                        acked[(name, i * 128)] = data
                    else:
                        full[name] = i
                        if t.status != 2 or sense_of(t) != (0x07, 0x27, 0x07):
                            problems.append("client %s: status %r sense %r when the store is full, "
                                            "want 07/27/07" % (name, t.status, sense_of(t)))
                if len(full) == 2:
                    break
            print("     store full: a after %s KiB, b after %s KiB" %
                  (full.get("a", -1) * 64, full.get("b", -1) * 64))
            if len(full) != 2:
                problems.append("never ran out of space")
            for name, s in sess.items():
                t = s.command(bytes([0x35] + [0] * 9))
                if t.status != 0:
                    problems.append("SYNCHRONIZE CACHE failed on a full store: %r" % t.status)
                t = s.read(0, 128)
                if bytes(t.data) != acked[(name, 0)]:
                    problems.append("client %s cannot read its data on a full store" % name)
                t = write(s, 0, bytes([0xee]) * 65536)
                if t.status != 0:
                    problems.append("client %s cannot overwrite a held block on a full store" % name)
                else:
                    acked[(name, 0)] = bytes([0xee]) * 65536
                s.command(bytes([0x35] + [0] * 9))
            return problems

        def restart():
            for s in sess.values():
                s.logout()
                s.close()
            p = procs[-1]
            p.terminate()
            rc = p.wait(20)
            problems = [] if rc == 0 else ["exit status %d on a full store" % rc]
            start()
            for name in ("a", "b"):
                s = I.Session("127.0.0.1", port, "iqn.2024-01.test.pristine:full-" + name,
                              target_name="iqn.2026-11.org.pristine:golden", lun=0)
                s.login()
                bad = 0
                for (n, lba), data in acked.items():
                    if n == name and bytes(s.read(lba, 128).data) != data:
                        bad += 1
                if bad:
                    problems.append("client %s lost %d acknowledged writes after the restart" % (name, bad))
                s.logout()
                s.close()
            log = open(log_path, "rb").read().decode("utf-8", "replace")
            if "cannot be trusted" in log:
                problems.append("an overlay was taken for corrupt after the store filled up")
            for bad in ("ERROR: AddressSanitizer", "runtime error:"):
                if bad in log:
                    problems.append("sanitizer report: " + bad)
            return problems

        check.case("store full: writes fail with SPACE ALLOCATION FAILED, reads work", fill)
        check.case("restart after a full store: overlays intact", restart)
        with open(image, "rb") as f:
            same = hashlib.sha256(f.read()).hexdigest() == sha0
        check.case("golden image unchanged", lambda: [] if same else ["golden image changed"])
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
        subprocess.run(["umount", mnt])
        subprocess.run(["rm", "-rf", tmp])
    return check.finish()


def main():
    rc = 0
    # The free-space floor refuses first; with no floor the kernel's own
    # ENOSPC reaches the overlay mid-write.
    for floor in ("16M", "0"):
        print("== --store-floor %s" % floor)
        r = run(floor)
        if r == 77:
            return 77
        rc |= r
    return rc


if __name__ == "__main__":
    sys.exit(main())
