"""Shared helpers of the fault-injection suite (tests/faults/test_*.py).

The daemon runs under build/faultinject.so (tests/lib/faultinject.c,
LD_PRELOAD) with FAULT_CTL naming a rules file; a test arms a fault by
writing rules there (atomically: write then rename) and disarms it by
writing an empty file.  The shim re-reads the file on the next wrapped
call, so a rule is in force as soon as arm() returns.

Everything here is bounded in time: sessions have timeouts, waits have
deadlines, daemons are killed at the end whatever happened.
"""
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import iscsi_initiator as I  # noqa: E402

TOP = I.TOP
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
PRISTINED = os.environ.get("PRISTINED", os.path.join(BUILD, "asan", "pristined"))
PRISTINECTL = os.path.join(BUILD, "pristinectl")
SHIM = os.path.join(BUILD, "faultinject.so")
TARGET = "iqn.2026-11.org.pristine:golden"
BS = 512

SKIP = 77


def prerequisites():
    """None when the suite can run, else the reason to skip."""
    for path, what in ((PRISTINED, "pristined (make asan)"), (PRISTINECTL, "pristinectl (make)"),
                       (SHIM, "build/faultinject.so (make build/faultinject.so)")):
        if not os.access(path, os.R_OK):
            return "%s not built" % what
    return None


def sanitizer_runtime(binary):
    """The ASan runtime the binary links, which must precede the shim in
    LD_PRELOAD ("ASan runtime does not come first" otherwise); None for a
    build without sanitizers."""
    try:
        out = subprocess.run(["ldd", binary], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"(\S*libasan\.so[.\d]*) => (\S+)", out)
    return m.group(2) if m else None


def sense_of(t):
    """(key, asc, ascq) of a task's fixed or descriptor sense, or None."""
    sd = bytes(t.sense)
    if len(sd) >= 14 and (sd[0] & 0x7F) in (0x70, 0x71):
        return sd[2] & 0x0F, sd[12], sd[13]
    if len(sd) >= 4 and (sd[0] & 0x7F) in (0x72, 0x73):
        return sd[1] & 0x0F, sd[2], sd[3]
    return None


def fmt_sense(t):
    s = sense_of(t)
    return "status %r sense %s" % (t.status, "%02x/%02x/%02x" % s if s else "none")


def cdb_sync():
    return bytes([0x35] + [0] * 9)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def pattern(tag, lba, blocks):
    """Recognisable content: every sector names its tag and LBA."""
    out = bytearray()
    for i in range(blocks):
        head = b"%s:%012d:" % (tag.encode(), lba + i)
        out += (head * (BS // len(head) + 1))[:BS]
    return bytes(out)


class Daemon:
    """pristined under the fault shim, on a free port, in its own tmp dir
    (or with state somewhere else: state=PATH)."""

    def __init__(self, mib=32, state=None, extra=(), image=None, golden=None):
        self.tmp = tempfile.mkdtemp(prefix="pristine-faults.")
        self.image = image or os.path.join(self.tmp, "golden.img")
        if not image:
            self.golden = golden if golden is not None else I.image_bytes(mib)
            with open(self.image, "wb") as f:
                f.write(self.golden)
        else:
            with open(self.image, "rb") as f:
                self.golden = f.read()
        self.golden_sha = sha256_file(self.image)
        self.state = state or os.path.join(self.tmp, "state")
        self.ctl_path = os.path.join(self.tmp, "faults.ctl")
        self.log_path = os.path.join(self.tmp, "pristined.log")
        self.port = I.free_port()
        self.extra = list(extra)
        self.proc = None
        self.disarm()

    # ---- life cycle
    def argv(self):
        """The daemon's command line (a subclass may start it otherwise)."""
        return [PRISTINED, "--image", self.image, "--listen", "127.0.0.1:%d" % self.port,
                "--state", self.state, "--nop-interval", "0"] + self.extra

    def start(self, timeout=30.0, fault_env=True):
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
        if fault_env:
            rt = sanitizer_runtime(PRISTINED)
            env["LD_PRELOAD"] = " ".join(p for p in (rt, SHIM) if p)
            env["FAULT_CTL"] = self.ctl_path
        args = self.argv()
        self.logf = open(self.log_path, "ab")
        self.mark = os.path.getsize(self.log_path)
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "listening on" in self.log(since_start=True):
                return self
            if self.proc.poll() is not None:
                raise I.ISCSIError("pristined exited at start (%s):\n%s"
                                   % (self.proc.returncode, self.log(since_start=True)[-3000:]))
            time.sleep(0.05)
        raise I.ISCSIError("pristined did not start within %ss" % timeout)

    def stop(self, timeout=30.0):
        """SIGTERM and wait; returns a list of problems (exit status,
        sanitizer reports)."""
        if self.proc is None:
            return []
        problems = I.stop_process(self.proc, lambda: self.log(since_start=True), timeout)
        self.logf.close()
        self.proc = None
        return problems

    def restart(self, fault_env=True):
        problems = self.stop()
        self.start(fault_env=fault_env)
        return problems

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self, since_start=False):
        try:
            with open(self.log_path, "rb") as f:
                if since_start:
                    f.seek(self.mark)
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_mark(self):
        return os.path.getsize(self.log_path)

    def log_since(self, mark):
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8", "replace")

    def wait_log(self, regex, mark, timeout=5.0):
        """The first match of regex in the log after mark, or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.log_since(mark))
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.05)

    # ---- faults
    def arm(self, *rules):
        """Replace the fault rules (lines of tests/lib/faultinject.c's
        format).  In force for the daemon's next file call."""
        tmp = self.ctl_path + ".new"
        with open(tmp, "w") as f:
            f.write("\n".join(rules) + "\n")
        os.replace(tmp, self.ctl_path)

    def disarm(self):
        self.arm("# no faults")

    def hits(self):
        """Failures injected per rule since the last arm(): {index: n}."""
        out = {}
        try:
            with open(self.ctl_path + ".hits") as f:
                for line in f:
                    i, n = line.split()
                    out[int(i)] = int(n)
        except (OSError, ValueError):
            pass
        return out

    # ---- clients
    def session(self, name, timeout=20, op_keys=None):
        s = I.Session("127.0.0.1", self.port, name, target_name=TARGET, lun=0, timeout=timeout)
        s.login(op_keys=op_keys)
        s.ready()
        return s

    def ctl(self, *args, timeout=30):
        """pristinectl --json VERB...; returns (exit status, parsed JSON or text)."""
        r = subprocess.run([PRISTINECTL, "--state", self.state, "--json"] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        try:
            return r.returncode, json.loads(r.stdout)
        except ValueError:
            return r.returncode, (r.stdout + r.stderr).strip()

    def overlay_dir(self, name):
        return os.path.join(self.state, "overlays", name)


def write(s, lba, data, fua=False):
    cdb = bytearray(I.cdb_write10(lba, len(data) // BS))
    if fua:
        cdb[1] |= 0x08
    return s.command(bytes(cdb), write_data=data)


def sync(s):
    return s.command(cdb_sync())


def read(s, lba, blocks):
    return s.read(lba, blocks)


def close_quietly(*sessions):
    for s in sessions:
        if s is None:
            continue
        try:
            s.logout(timeout=5)
        except Exception:   # a session the daemon already ended
            pass
        try:
            s.close()
        except Exception:
            pass


def check_committed(d, name, committed, maybe=None):
    """Log in as name and read back every committed (lba -> bytes) range
    exactly; ranges in maybe (lba -> (old, new)) may read either whole
    sector content.  Returns problems."""
    problems = []
    s = d.session(name)
    try:
        for lba, data in sorted(committed.items()):
            t = s.read(lba, len(data) // BS)
            if t.status != 0:
                problems.append("%s: committed LBA %d unreadable after restart: %s"
                                % (name, lba, fmt_sense(t)))
            elif bytes(t.data) != data:
                problems.append("%s: committed write at LBA %d LOST or changed after restart"
                                % (name, lba))
        for lba, (old, new) in sorted((maybe or {}).items()):
            t = s.read(lba, len(new) // BS)
            got = bytes(t.data)
            for k in range(len(new) // BS):
                sec = got[k * BS:(k + 1) * BS]
                if sec not in (old[k * BS:(k + 1) * BS], new[k * BS:(k + 1) * BS]):
                    problems.append("%s: unflushed write at LBA %d reads neither its old "
                                    "nor its new content" % (name, lba + k))
                    break
    finally:
        close_quietly(s)
    return problems


class Model:
    """What one client's disk must read after a restart: the golden image
    with every write a successful SYNCHRONIZE CACHE (or FUA) covered.
    Writes acknowledged since the last successful flush are pending:
    each of their sectors may read old or new content."""

    def __init__(self, golden):
        self.committed = bytearray(golden)
        self.pending = []           # (lba, data), in order

    def wrote(self, lba, data):
        self.pending.append((lba, bytes(data)))

    def flushed(self):
        for lba, data in self.pending:
            self.committed[lba * BS:lba * BS + len(data)] = data
        self.pending = []

    def check(self, d, name, chunk_blocks=512):
        """Read the whole disk as name; returns problems."""
        maybe = {}
        for lba, data in self.pending:
            for k in range(len(data) // BS):
                maybe.setdefault(lba + k, set()).add(data[k * BS:(k + 1) * BS])
        problems = []
        s = d.session(name)
        try:
            nblocks = len(self.committed) // BS
            for lba in range(0, nblocks, chunk_blocks):
                n = min(chunk_blocks, nblocks - lba)
                t = s.read(lba, n)
                if t.status != 0:
                    problems.append("%s: READ at LBA %d after restart: %s" % (name, lba, fmt_sense(t)))
                    break
                got = bytes(t.data)
                want = self.committed[lba * BS:(lba + n) * BS]
                if got == want:
                    continue
                for k in range(n):
                    g, w = got[k * BS:(k + 1) * BS], want[k * BS:(k + 1) * BS]
                    if g != w and g not in maybe.get(lba + k, ()):
                        problems.append("%s: LBA %d differs from what was committed (a flushed "
                                        "write LOST or garbage)" % (name, lba + k))
                        break
                if len(problems) > 5:
                    break
        finally:
            close_quietly(s)
        return problems


def daemon_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def daemon_rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        return True
    except OSError:
        return False
