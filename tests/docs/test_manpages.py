#!/usr/bin/env python3
"""tests/docs/test_manpages.py - the man pages render cleanly and say what
the programs accept.

For every page in man/:
  - groff -man -Tutf8 -ww renders it without a single warning;
  - the text has no raw font escape or control character in it (a stray
    form feed where "\\f" was meant once printed "PATHRB--block-sizR");
For pristinectl(8): each verb's synopsis names exactly the options that
  `pristinectl --help` lists for that verb, and the parser knows each of
  them (never "unknown option").
For pristined(8): the OPTIONS section documents exactly the long options
  of `pristined --help` (plus -c/--config), and the parser knows each.

Exit 0 pass, 1 fail, 77 skip (groff not installed).
"""
import os
import re
import shutil
import subprocess
import sys

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", os.path.join(TOP, "build"))
CTL = os.path.join(BUILD, "pristinectl")
DAEMON = os.path.join(BUILD, "pristined")
OPT = re.compile(r"--[a-z][a-z0-9-]*")
failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL:", msg)


def render(page, width="78n"):
    """Plain text of a page (no SGR, no overstrike), and groff's stderr."""
    env = dict(os.environ, LC_ALL="C.UTF-8")
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-rLL=" + width, "-P-cbou", page],
                       capture_output=True, text=True, env=env, timeout=60)
    return p.stdout, p.stderr


def check_render(page):
    out, err = render(page)
    if err.strip():
        fail("%s: groff warns:\n%s" % (page, err.strip()))
    for n, line in enumerate(out.splitlines(), 1):
        if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", line):
            fail("%s: control character in rendered line %d: %r" % (page, n, line))
        if re.search(r"\\f|\\\(|\\-|\\\*", line):
            fail("%s: raw escape in rendered line %d: %r" % (page, n, line))
    with open(page, "rb") as f:
        src = f.read()
    if re.search(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]", src):
        fail("%s: the source holds a control character (a form feed for \\f?)" % page)


def help_verbs():
    """{verb: set of options} from pristinectl --help."""
    out = subprocess.run([CTL, "--help"], capture_output=True, text=True, timeout=10)
    text = out.stdout + out.stderr
    verbs, cur = {}, None
    for line in text.splitlines():
        if line.startswith("options:"):
            break
        m = re.match(r"^  ([a-z][a-z ]*[a-z])(\s|$)(.*)", line)
        if m and not line.startswith("   "):
            head = line.strip()
            # "job list | job show N": two verbs on one line
            parts = [p.strip() for p in re.split(r"\s+\|\s+(?=[a-z]+ [a-z])", head.split("   ")[0])]
            cur = []
            for p in parts:
                w = p.split()
                key = " ".join(w[:2]) if len(w) > 1 and re.match(r"^[a-z]+$", w[1]) else w[0]
                verbs.setdefault(key, set()).update(OPT.findall(p))
                cur.append(key)
            continue
        s = line.strip()
        # continuation of a synopsis: starts with an option or a bracket,
        # and sits left of the description column
        if cur and (s.startswith("[") or s.startswith("--")) and len(line) - len(line.lstrip()) < 20:
            for k in cur:
                verbs[k].update(OPT.findall(s))
    return verbs


def man_verbs():
    out, _ = render(os.path.join(TOP, "man", "pristinectl.8"), width="400n")
    verbs = {}
    for line in out.splitlines():
        m = re.match(r"^       ([a-z]+)( [a-z]+)?\b(.*)$", line)
        if not m:
            continue
        key = m.group(1) + (m.group(2) or "")
        verbs.setdefault(key, set()).update(OPT.findall(line))
    return verbs


def check_ctl():
    hv, mv = help_verbs(), man_verbs()
    if len(hv) < 15:
        fail("parsed only %d verbs from pristinectl --help: %s" % (len(hv), sorted(hv)))
    for verb, opts in sorted(hv.items()):
        if verb not in mv:
            fail("pristinectl(8) has no synopsis for '%s'" % verb)
            continue
        if mv[verb] != opts:
            fail("pristinectl(8) '%s': man has %s, --help has %s" % (verb, sorted(mv[verb]), sorted(opts)))
        for o in opts:
            p = subprocess.run([CTL, "--socket", "/nonexistent/pristine.sock"] + verb.split() + ["x", o, "x"],
                               capture_output=True, text=True, timeout=10)
            if "unknown option" in p.stderr:
                fail("pristinectl %s: %s is in the synopsis but the parser says: %s" % (verb, o, p.stderr.strip()))


def check_daemon():
    out, _ = render(os.path.join(TOP, "man", "pristined.8"), width="400n")
    sect = re.search(r"^OPTIONS\n(.*?)^[A-Z][A-Z ]+\n", out, re.S | re.M)
    if not sect:
        fail("pristined(8): no OPTIONS section")
        return
    man = set()
    for line in sect.group(1).splitlines():
        if re.match(r"^       -", line):
            man.update(OPT.findall(line))
    p = subprocess.run([DAEMON, "--help"], capture_output=True, text=True, timeout=10)
    helpopts = set(OPT.findall(p.stdout + p.stderr)) | {"--config"}
    helpopts -= {"--help", "--version"}
    man -= {"--help", "--version"}
    if man != helpopts:
        fail("pristined(8) OPTIONS %s differ from --help %s" % (sorted(man - helpopts), sorted(helpopts - man)))
    for o in sorted(man | helpopts):
        p = subprocess.run([DAEMON, o, "/nonexistent"], capture_output=True, text=True, timeout=10)
        if "unrecognized option" in p.stderr or "unknown option" in p.stderr:
            fail("pristined: %s is documented but the parser says: %s" % (o, p.stderr.splitlines()[0]))


def main():
    if not shutil.which("groff"):
        print("groff not installed (make deps)")
        return 77
    for prog in (CTL, DAEMON):
        if not os.access(prog, os.X_OK):
            print("%s not built (make)" % prog)
            return 77
    pages = sorted(os.path.join(TOP, "man", f) for f in os.listdir(os.path.join(TOP, "man")))
    for page in pages:
        check_render(page)
    check_ctl()
    check_daemon()
    print("%d pages checked, %d problems" % (len(pages), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
