#!/usr/bin/env python3
"""Issue 16, "what it must show" 1: the web console in a real browser -
headless Chromium (Debian's chromium, chromium-driver, python3-selenium)
against build/asan/pristined with console-listen, boot-listen and an
image, while a QEMU PC (TCG, SeaBIOS, iPXE) boots through the boot
endpoint and sanboots it:
  - a wrong password shows the server's error and makes no session
  - log in; PC "pc1" turns up online in the PCs table with image lab v1
    (the boot sector of tests/boot/bootsector.S wrote LBA 2 of its disk,
    so its overlay bar shows more than 0 bytes)
  - press Reset, tick "force" in the confirmation (the PC is online),
    confirm: the bar drops to 0 bytes
  - the filter box, sorting, Add PC (MAC, quota as the bar's limit), the
    policy select (checked through the API), Remove (cancel keeps the PC,
    OK removes it), Wake (the page reports what the API answers)
  - Images page: open a draft of "lab" for PC "maint", commit it with a
    message: v2 is on the timeline, marked current, with that message
  - Export: its job with a progress bar, done at 100%, the file written
  - a change POSTed from the page's JavaScript without X-CSRF-Token gets
    403 (the same request with the token gets 200: the check can fail)
  - the session cookie in a second Chromium whose requests come from
    another address is refused (the second browser shows the login form,
    the first is still logged in, the event log says why)
  - an expired session (a second daemon with console-session-timeout = 3,
    the page's poll stopped as when a laptop sleeps, 4 s): the next click
    returns to the login form saying the session expired
  - the Live page charted the boot's I/O from GET stats (or says the
    daemon has none: 501); the Events page lists GET events newest first
  - the phone layout (390x844): the PCs table becomes cards
  - screenshots of every page into build/console-shots/*.png
Another address: the test runs in a private network namespace of its own
(unshare --net, as root) with lo up holding 10.77.0.2 too; the
console listens on *:PORT inside it; the first browser connects to
127.0.0.1 (peer 127.0.0.1), the second to 10.77.0.2 (peer 10.77.0.2:
the kernel picks the local address as source).  Without root (no
namespace) the second browser is replaced by http.client bound to
127.0.0.2, and the output says so.
Exit 0 (pass), 1 (fail), 77 (skip: chromium, chromedriver, selenium,
QEMU or the iPXE ROM missing)."""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETNS_MARK = "PRISTINE_CONSOLE_TEST_NETNS"


def skip(msg):
    print(msg)
    sys.exit(77)


def reexec():
    """Debian's python3-selenium lives in /usr/bin/python3's path (a pyenv
    python3 earlier in PATH does not see it); as root, run in a private
    network namespace (see the docstring)."""
    args = [sys.executable, os.path.abspath(__file__)] + sys.argv[1:]
    try:
        import selenium  # noqa: F401
    except ImportError:
        if os.path.exists("/usr/bin/python3") and os.path.realpath(sys.executable) != "/usr/bin/python3":
            args[0] = "/usr/bin/python3"
        else:
            skip("python3-selenium not installed (make deps)")
    if os.environ.get(NETNS_MARK) is None:
        env = dict(os.environ)
        if os.geteuid() == 0 and shutil.which("unshare") and \
                subprocess.run(["unshare", "--net", "true"], capture_output=True).returncode == 0:
            env[NETNS_MARK] = "1"
            os.execvpe("unshare", ["unshare", "--net", "--"] + args, env)
        env[NETNS_MARK] = "0"
        os.execve(args[0], args, env)
    elif args[0] != sys.executable:
        os.execv(args[0], args)


reexec()
IN_NETNS = os.environ.get(NETNS_MARK) == "1"

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

sys.path.insert(0, HERE)
import consolelib as C  # noqa: E402

SHOTS = os.path.join(C.BUILD, "console-shots")
ROM = "/usr/lib/ipxe/qemu/pxe-e1000.rom"
BOOT_WAIT = int(os.environ.get("BOOT_WAIT", "240"))
PASSWORD = "correct horse battery staple"
PC_MAC = "52:54:00:16:00:01"
PC_IQN = "iqn.2024-01.test.pristine:console-pc1"
MAINT_IQN = "iqn.2024-01.test.pristine:console-maint"
OTHER_ADDR = "10.77.0.2"
MARKER1 = b"PRISTINE-TEST-LBA1-MARKER-5d3e91"   # as in tests/boot/bootsector.S

check = C.check


def wait_for(what, fn, timeout, step=0.25):
    """fn() until it returns a true value (returned) or timeout s pass (None)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = fn()
        except WebDriverException:
            v = None
        if v:
            return v
        if time.monotonic() > deadline:
            print("timed out after %d s waiting for %s" % (timeout, what))
            return None
        time.sleep(step)


def retried(what, fn, timeout=10):
    """fn() (an action on the page: a click, a select) again until it does
    not raise: the PCs table is redrawn every 2 s, so an element found an
    instant ago may be stale by the time it is used.  True when it ran."""
    return bool(wait_for(what, lambda: fn() or True, timeout))


def select_value(a, css, value):
    """Choose value in the <select> at css in browser a (retried, see retried)."""
    ok = retried(css, lambda: Select(a.d.find_element(By.CSS_SELECTOR, css)).select_by_value(value))
    check(ok, "could choose %s in %s" % (value, css))


def click(a, css):
    """Click the element at css in browser a (retried, see retried)."""
    check(retried(css, lambda: a.d.find_element(By.CSS_SELECTOR, css).click()), "could click " + css)


def netns_setup():
    """lo up, with OTHER_ADDR as well (only in our namespace): a connection
    to it comes from it (its local route's preferred source)."""
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "addr", "add", OTHER_ADDR + "/32", "dev", "lo"]):
        subprocess.run(cmd, check=True)


def bootsector(tmp):
    """tests/boot/bootsector.S assembled (512 bytes)."""
    obj, bs = os.path.join(tmp, "bs.o"), os.path.join(tmp, "bs.bin")
    subprocess.run(["as", "--32", "-o", obj, os.path.join(C.TOP, "tests", "boot", "bootsector.S")], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary", "-o", bs, obj], check=True)
    data = open(bs, "rb").read()
    assert len(data) == 512, "boot sector is not 512 bytes"
    return data


def make_image(path, bs, mib=16):
    with open(path, "wb") as f:
        f.truncate(mib << 20)
        f.write(bs)
        f.seek(512)
        f.write(MARKER1)


class Daemon(C.Pristined):
    """pristined -c FILE with the console and the boot endpoint on, PCs
    pc1 and maint; start() sets the console password."""

    def __init__(self, tmp, name, image, timeout_s=None):
        self.name = name
        state = os.path.join(tmp, name + "-state")
        self.iscsi, self.boot, self.cport = C.free_port(), C.free_port(), C.free_port()
        self.console_addr = ("*" if IN_NETNS else "127.0.0.1") + ":%d" % self.cport
        conf = ["[server]", "listen = 127.0.0.1:%d" % self.iscsi, "state = " + state,
                "boot-listen = 127.0.0.1:%d" % self.boot, "boot-portal = 10.0.2.100:3260",
                "console-listen = " + self.console_addr]
        if timeout_s:
            conf.append("console-session-timeout = %d" % timeout_s)
        conf += ["[defaults]", "enroll = deny",
                 "[image lab]", "path = " + image,
                 "[client pc1]", "initiator = " + PC_IQN, "mac = " + PC_MAC, "image = lab",
                 "[client maint]", "initiator = " + MAINT_IQN, "image = lab"]
        super().__init__(tmp, name, state, "\n".join(conf) + "\n")

    def start(self):
        self.spawn()

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.cport), 1).close()
            except OSError:
                return False
            return "listening" in self.log()
        self.wait_up(up, 60, "pristined's console")
        # The password, from the CLI (the console refuses to set it).
        self.set_password(PASSWORD)


class PC:
    """QEMU: iPXE chains to the boot endpoint (10.0.2.100:80) and
    sanboots the portal it names (10.0.2.100:3260), both forwarded by
    socat to the daemon.  No isa-debug-exit: the boot sector halts after
    its report and the PC stays online (iPXE keeps its session)."""

    def __init__(self, tmp, d):
        self.dir = os.path.join(tmp, "pc")
        os.makedirs(os.path.join(self.dir, "tftp"))
        with open(os.path.join(self.dir, "tftp", "boot.ipxe"), "w") as f:
            f.write("#!ipxe\ndhcp\nchain http://10.0.2.100/boot.ipxe\n")
        self.serial = os.path.join(self.dir, "serial.log")
        fwd = "guestfwd=tcp:10.0.2.100:%d-cmd:socat - TCP:127.0.0.1:%d"
        netdev = ",".join(["user,id=n0,restrict=on", "tftp=" + os.path.join(self.dir, "tftp"),
                           "bootfile=boot.ipxe", fwd % (80, d.boot), fwd % (3260, d.iscsi)])
        self.log = open(os.path.join(self.dir, "qemu.log"), "wb")
        self.proc = subprocess.Popen(
            ["qemu-system-x86_64", "-M", "pc", "-m", "128", "-nodefaults", "-display", "none",
             "-vga", "std", "-no-reboot", "-boot", "n", "-serial", "file:" + self.serial,
             "-netdev", netdev, "-device", "e1000,netdev=n0,mac=%s,romfile=%s" % (PC_MAC, ROM)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)

    def result(self):
        try:
            s = open(self.serial, "rb").read()
        except OSError:
            return None
        for tag in (b"PRISTINE-BOOT-OK", b"PRISTINE-BOOT-ERR"):
            if tag in s:
                return tag.decode()
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def chrome(profile, width=1400, height=900):
    o = webdriver.ChromeOptions()
    o.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--ignore-certificate-errors", "--no-first-run", "--user-data-dir=" + profile,
              "--window-size=%d,%d" % (width, height)):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    d = webdriver.Chrome(options=o, service=Service(executable_path=shutil.which("chromedriver")))
    d.set_page_load_timeout(60)
    d.set_script_timeout(30)
    return d


class Page:
    """One browser on the console."""

    def __init__(self, driver, base):
        self.d, self.base = driver, base

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def fetch(self, method, path, headers=None, body=None):
        """fetch() from the page's own JavaScript: {status, body}."""
        return self.d.execute_async_script("""
            const [method, path, headers, body, done] = arguments;
            fetch(path, {method, headers, body, credentials: 'same-origin'})
              .then(async r => done({status: r.status, body: await r.text()}))
              .catch(e => done({status: -1, body: String(e)}));""", method, path, headers or {}, body)

    def visible(self, elem_id):
        return self.js("const e = document.getElementById(arguments[0]);"
                       "return !!e && !e.hidden && e.offsetParent !== null;", elem_id)

    def login_shown(self):
        return self.visible("login-form") and not self.visible("app")

    def app_shown(self):
        return self.visible("app") and not self.visible("login-form")

    def login(self, password):
        pw = self.d.find_element(By.ID, "password")
        pw.clear()
        pw.send_keys(password)
        self.d.find_element(By.ID, "login-button").click()

    def go(self, page):
        self.d.find_element(By.CSS_SELECTOR, '#nav a[data-page="%s"]' % page).click()
        return wait_for("page " + page, lambda: self.visible("page-" + page), 10)

    def row(self, name):
        """What the PCs table shows of a client (None without its row)."""
        return self.js("""
            const tr = document.querySelector('#pcs-body tr[data-client="' + arguments[0] + '"]');
            if (!tr) return null;
            const bar = tr.querySelector('.bar');
            return {online: !!tr.querySelector('.dot.on'), image: tr.querySelector('.image').textContent,
                    version: tr.querySelector('.version').textContent,
                    used: Number(bar.dataset.used), limit: Number(bar.dataset.limit),
                    label: bar.textContent, text: tr.textContent};""", name)

    def toast(self):
        """The last message the page showed (an action's outcome)."""
        return self.js("return document.getElementById('toast').textContent")

    def shot(self, name):
        path = os.path.join(SHOTS, name + ".png")
        self.d.save_screenshot(path)
        print("screenshot " + path)

    def errors(self):
        """Script errors the page logged (not failed requests: 401/403/404/501 are expected)."""
        return [e["message"] for e in self.d.get_log("browser")
                if e["level"] == "SEVERE" and e.get("source") != "network"]


def main():
    for tool in ("chromium", "chromedriver"):
        if not shutil.which(tool):
            skip(tool + " not installed (make deps)")
    for tool in ("qemu-system-x86_64", "socat", "as", "ld"):
        if not shutil.which(tool):
            skip(tool + " not installed (make deps)")
    if not os.path.exists(ROM):
        skip(ROM + " missing (package ipxe-qemu)")
    for f in (C.PRISTINED, C.CTL):
        if not os.access(f, os.X_OK):
            skip(f + " not built (make all asan)")
    if IN_NETNS:
        netns_setup()
        print("in a private network namespace: second browser from " + OTHER_ADDR)
    else:
        print("no network namespace (not root, or unshare refused): the stolen cookie is checked with "
              "http.client from 127.0.0.2 instead of a second browser")
    os.makedirs(SHOTS, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="pristine-console-")
    procs = []
    try:
        run(tmp, procs)
    finally:
        for p in reversed(procs):
            try:
                (p.quit if hasattr(p, "quit") else p.stop)()
            except Exception as e:  # noqa: BLE001 - cleanup goes on
                print("cleanup: %s" % e)
        shutil.rmtree(tmp, ignore_errors=True)
    if C.failures:
        print("%d check(s) failed" % len(C.failures))
        sys.exit(1)
    print("PASS")


def run(tmp, procs):
    image = os.path.join(tmp, "lab.raw")
    make_image(image, bootsector(tmp))
    d = Daemon(tmp, "d1", image)
    d.start()
    procs.append(d)
    base = "https://127.0.0.1:%d" % d.cport
    print("console at " + base)

    a = Page(chrome(os.path.join(tmp, "chrome-a")), base)
    procs.append(a.d)
    a.d.get(base + "/")
    check(wait_for("the login form", a.login_shown, 20), "the login form is shown without a session")
    a.shot("login")

    # --- a wrong password: the server's error, no session
    a.login("not the password")
    err = wait_for("the login error", lambda: a.visible("login-error") and
                   a.d.find_element(By.ID, "login-error").text, 20)
    check(err and "wrong password" in err, "a wrong password shows the server's error (%r)" % err)
    check(a.login_shown(), "after a wrong password the login form stays")
    check(not any(c["name"] == "pristine_session" for c in a.d.get_cookies()),
          "a wrong password sets no session cookie")
    check(a.fetch("GET", "/api/v1/clients")["status"] == 401, "the API answers 401 without a session")
    a.shot("login-refused")

    # --- log in
    a.login(PASSWORD)
    check(wait_for("the app", a.app_shown, 20), "the right password opens the console")
    cookie = [c for c in a.d.get_cookies() if c["name"] == "pristine_session"]
    check(cookie and cookie[0].get("httpOnly") and cookie[0].get("secure"),
          "the session cookie is HttpOnly and Secure")
    r = wait_for("pc1's row", lambda: a.row("pc1"), 20)
    check(r and not r["online"], "pc1 is listed, offline before its boot")

    # --- a PC boots: online with its image and version, its overlay written
    pc = PC(tmp, d)
    procs.append(pc)
    res = wait_for("the PC's boot sector", pc.result, BOOT_WAIT, 1)
    print("PC boot: %s" % res)
    print(open(pc.serial, "rb").read().decode("latin-1"))
    check(res == "PRISTINE-BOOT-OK", "the QEMU PC booted through iPXE and wrote its disk")
    r = wait_for("pc1 online with data", lambda: (lambda x: x if x and x["online"] and x["used"] > 0 else None)
                 (a.row("pc1")), 20)
    check(r is not None, "pc1 turns up online in the table")
    if r:
        check(r["image"] == "lab" and r["version"] == "v1", "pc1's row shows image lab v1 (%s %s)"
              % (r["image"], r["version"]))
        check(r["used"] > 0 and r["limit"] > 0, "pc1's overlay bar shows data (%s)" % r["label"])
    a.shot("pcs")

    # --- reset it from its row: the confirmation offers "force"; the bar drops to 0
    click(a, '#pcs-body tr[data-client="pc1"] button.reset')
    check(wait_for("the dialog", lambda: a.js("return document.getElementById('confirm').open"), 10),
          "Reset opens a confirmation dialog")
    check(a.visible("confirm-force"), "the confirmation of an online PC's reset offers force")
    a.shot("reset-confirm")
    a.d.find_element(By.ID, "confirm-force").click()
    a.d.find_element(By.ID, "confirm-ok").click()
    r = wait_for("pc1's bar at 0", lambda: (lambda x: x if x and x["used"] == 0 else None)(a.row("pc1")), 20)
    check(r is not None, "after the reset pc1's overlay bar drops to 0 (%s)" % (r and r["label"]))

    # --- filter, sort, add, policy, remove from the PCs page
    names = lambda: a.js("return [...document.querySelectorAll('#pcs-body tr')].map(t => t.dataset.client)")
    a.d.find_element(By.ID, "pc-filter").send_keys("52:54:00:16")
    check(names() == ["pc1"], "the filter box keeps the PCs that match (MAC): %s" % names())
    a.d.find_element(By.ID, "pc-filter").clear()
    a.js("document.getElementById('pc-filter').dispatchEvent(new Event('input'))")
    check(names() == ["maint", "pc1"], "sorted by name: %s" % names())
    a.d.find_element(By.CSS_SELECTOR, '#pcs th[data-sort="name"]').click()
    check(names() == ["pc1", "maint"], "a second click on Name reverses: %s" % names())
    a.d.find_element(By.ID, "pc-add-open").click()
    a.d.find_element(By.ID, "add-initiator").send_keys("iqn.2024-01.test.pristine:console-pc9")
    a.d.find_element(By.ID, "add-name").send_keys("pc9")
    a.d.find_element(By.ID, "add-mac").send_keys("52:54:00:16:00:09")
    a.d.find_element(By.ID, "add-quota").send_keys("8M")
    a.d.find_element(By.ID, "add-submit").click()
    r9 = wait_for("pc9's row", lambda: a.row("pc9"), 20)
    check(r9 and r9["limit"] == 8 << 20 and "52:54:00:16:00:09" in r9["text"],
          "Add PC puts pc9 in the table with its MAC and its 8 MiB quota as the bar's limit (%s)"
          % (r9 and r9["label"]))
    select_value(a, '#pcs-body tr[data-client="pc9"] select.policy', "reset-on-boot")
    api_policy = lambda: json.loads(a.fetch("GET", "/api/v1/clients/pc9")["body"]).get("policy")
    check(wait_for("pc9's policy", lambda: api_policy() == "reset-on-boot", 10),
          "the policy select changes pc9's policy (%s)" % api_policy())
    click(a, '#pcs-body tr[data-client="pc9"] button.remove')
    wait_for("the dialog", lambda: a.js("return document.getElementById('confirm').open"), 10)
    check(not a.visible("confirm-force"), "removing an offline PC offers no force")
    a.d.find_element(By.ID, "confirm-cancel").click()
    time.sleep(2.5)
    check(a.row("pc9") is not None, "Cancel in the confirmation keeps pc9")
    click(a, '#pcs-body tr[data-client="pc9"] button.remove')
    wait_for("the dialog", lambda: a.js("return document.getElementById('confirm').open"), 10)
    a.d.find_element(By.ID, "confirm-ok").click()
    check(wait_for("pc9 gone", lambda: a.row("pc9") is None and a.row("pc1") is not None, 20),
          "Remove, confirmed, takes pc9 out of the table")

    # --- Wake: the page reports what the API answers (501 on a daemon
    # without Wake-on-LAN, the packet sent, or the daemon's reason)
    a.js("document.getElementById('toast').textContent = ''")
    click(a, '#pcs-body tr[data-client="pc1"] button.wake')
    toast = wait_for("wake's message", lambda: a.toast(), 20) or ""
    w = a.fetch("POST", "/api/v1/clients/pc1/wake", {"Content-Type": "application/json",
                                                     "X-CSRF-Token": a.js("return P.csrf")}, "{}")
    if w["status"] == 501:
        check("not available" in toast, "Wake on a daemon without Wake-on-LAN says so (%r)" % toast)
    elif w["status"] == 200 and json.loads(w["body"]).get("woken"):
        check("magic packet sent" in toast, "Wake says the magic packet was sent (%r; API %s)" % (toast, w["body"]))
    elif w["status"] == 200:
        why = (json.loads(w["body"]).get("skipped") or [{}])[0].get("why", "")
        check(why and "not sent: " + why in toast, "Wake says why no packet went (%r; API %s)" % (toast, w["body"]))
    else:
        why = json.loads(w["body"]).get("error", "")
        check(why and why in toast, "Wake shows the daemon's reason (%r; API %s %s)" % (toast, w["status"], why))

    # --- a change without the CSRF token is refused; with it, accepted
    hdr = {"Content-Type": "application/json"}
    no = a.fetch("POST", "/api/v1/clients/maint/reset", hdr, '{"force": false}')
    check(no["status"] == 403, "a POST without X-CSRF-Token gets 403 (%s %s)" % (no["status"], no["body"]))
    tok = a.js("return P.csrf")
    yes = a.fetch("POST", "/api/v1/clients/maint/reset", dict(hdr, **{"X-CSRF-Token": tok}), '{"force": false}')
    check(yes["status"] == 200, "the same POST with the token gets 200 (%s %s)" % (yes["status"], yes["body"]))
    bad = a.fetch("POST", "/api/v1/clients/maint/reset", dict(hdr, **{"X-CSRF-Token": "0" * len(tok)}),
                  '{"force": false}')
    check(bad["status"] == 403, "a POST with a wrong token gets 403 (%s)" % bad["status"])

    # --- Images: open a draft for maint, commit it with a message from the page
    a.go("images")
    card = '#images-list article[data-image="lab"] '
    check(wait_for("lab's card", lambda: a.js("return !!document.querySelector(arguments[0])",
                                              card + 'li[data-version="1"].current'), 20),
          "the Images page shows lab's timeline with v1 current")
    Select(a.d.find_element(By.CSS_SELECTOR, card + "form.edit select")).select_by_value(MAINT_IQN)
    a.d.find_element(By.CSS_SELECTOR, card + "form.edit button").click()
    check(wait_for("the draft", lambda: a.js("return !!document.querySelector(arguments[0])",
                                             card + "form.commit"), 20),
          "Open draft shows the draft with its commit form (toast: %r)" % a.toast())
    info = a.d.find_element(By.CSS_SELECTOR, card + ".draft-info").text
    check("maint" in info or MAINT_IQN in info, "the draft names its maintenance PC (%r)" % info)
    a.shot("images-draft")
    msg = "console test: new driver"
    a.d.find_element(By.CSS_SELECTOR, card + "form.commit input.commit-message").send_keys(msg)
    a.d.find_element(By.CSS_SELECTOR, card + "form.commit button").click()
    v2 = wait_for("v2 current", lambda: a.js("""
        const li = document.querySelector(arguments[0]);
        return li && li.classList.contains('current') ? li.querySelector('.message').textContent : null;""",
                                              card + 'li[data-version="2"]'), 20)
    check(v2 == msg, "after Commit v2 is on the timeline as current with its message (%r)" % v2)
    check(a.js("return !document.querySelector(arguments[0]).classList.contains('current')",
               card + 'li[data-version="1"]'), "v1 is no longer marked current")
    # Export v2 to a file: a job with a progress bar that ends done
    out = os.path.join(tmp, "export.raw")
    a.d.find_element(By.CSS_SELECTOR, card + "form.export input.export-file").send_keys(out)
    a.d.find_element(By.CSS_SELECTOR, card + "form.export button").click()
    job = wait_for("the export job", lambda: a.js("""
        const j = document.querySelector('#jobs-list .job[data-state="done"]');
        return j && {what: j.querySelector('.what').textContent, progress: j.querySelector('.bar').dataset.progress};"""),
                   60)
    check(job and "export lab" in job["what"] and float(job["progress"]) == 1.0,
          "Export shows its job with a progress bar, done at 100%% (%s)" % job)
    check(os.path.exists(out) and os.path.getsize(out) == os.path.getsize(image), "the export wrote the image")
    check(not a.visible("nav-cluster"), "a single server shows no Cluster tab")
    a.shot("images")

    # --- Live and Events pages
    # The Live page has polled GET stats in the background since the login,
    # so the PC's boot (reads, and its write of LBA 2) is in the server's
    # charts; a daemon without statistics (501) gets a note instead.
    a.go("live")
    time.sleep(4.5)
    stats = a.fetch("GET", "/api/v1/stats")["status"]
    live = a.js("return P.pages.live.data()")
    if stats == 200:
        check(len(live["siops"]["t"]) >= 2 and max(live["siops"]["read"]) > 0 and max(live["siops"]["write"]) > 0,
              "the Live page charted the boot's reads and writes (server IOPS peaks read %.1f, write %.1f)"
              % (max(live["siops"]["read"] or [0]), max(live["siops"]["write"] or [0])))
        check(max(live["smib"]["read"] or [0]) > 0, "... and its MiB/s")
        check(live["pc"] in ("pc1", "maint") and len(live["piops"]["t"]) >= 2, "a PC's charts have points (%s)"
              % live["pc"])
    else:
        check(stats == 501 and live["unavailable"] and a.visible("live-note"),
              "without GET stats (%s) the Live page says so" % stats)
    a.shot("live")
    a.go("events")
    rows = lambda: a.js("return [...document.querySelectorAll('#events-body tr')].map(t => Number(t.dataset.seq))")
    shown = wait_for("events", rows, 20) or []
    api = [e["seq"] for e in reversed(json.loads(a.fetch("GET", "/api/v1/events")["body"])["events"])]
    # newest first; events added since the page's poll are only in api, at its front
    check(shown and len(api) >= len(shown) and api[len(api) - len(shown):] == shown,
          "the Events page lists the event log newest first (%s, api %s)" % (shown, api))
    texts = a.js("return [...document.querySelectorAll('#events-body tr')].map(t => t.dataset.kind + ': ' + t.textContent)")
    check(any(t.startswith("console:") and "127.0.0.1" in t for t in texts),
          "the refused console login is in the event log")
    print("event kinds shown: %s" % sorted(set(t.split(":")[0] for t in texts)))
    a.shot("events")

    # --- the cookie from another address is refused
    stolen = [c for c in a.d.get_cookies() if c["name"] == "pristine_session"][0]["value"]
    if IN_NETNS:
        b = Page(chrome(os.path.join(tmp, "chrome-b")), "https://%s:%d" % (OTHER_ADDR, d.cport))
        procs.append(b.d)
        b.d.get(b.base + "/")
        wait_for("b's login form", b.login_shown, 20)
        b.d.add_cookie({"name": "pristine_session", "value": stolen, "path": "/", "secure": True})
        b.d.get(b.base + "/")
        time.sleep(1)
        check(wait_for("b's login form", b.login_shown, 20) and not b.app_shown(),
              "a second browser (from %s) with the first one's cookie gets the login form" % OTHER_ADDR)
        got = b.fetch("GET", "/api/v1/clients")
        check(got["status"] == 401, "... and the API answers it 401 (%s)" % got["status"])
        b.shot("stolen-cookie")
    else:
        st = C.request(d, "GET", "/api/v1/clients", cookie="pristine_session=" + stolen,
                       source="127.0.0.2").status
        check(st == 401, "the first browser's cookie from 127.0.0.2 gets 401 (%s)" % st)
    a.d.refresh()
    check(wait_for("a's app", a.app_shown, 20), "the first browser is still logged in")
    ev = json.loads(a.fetch("GET", "/api/v1/events")["body"])
    check(any(e["kind"] == "console" and "another address" in e["text"] for e in ev.get("events", [])),
          "the event log records the cookie used from another address")

    # --- the phone layout: cards, not a table
    a.go("pcs")
    check(a.js("return getComputedStyle(document.querySelector('#pcs thead')).display") != "none",
          "at 1400 px the PCs table has its header row")
    a.d.set_window_size(390, 844)
    check(wait_for("cards", lambda: a.js(
        "return getComputedStyle(document.querySelector('#pcs thead')).display === 'none' && "
        "getComputedStyle(document.querySelector('#pcs-body tr')).display === 'block'"), 10),
        "at 390x844 the PCs table becomes cards")
    check(a.js("return document.documentElement.scrollWidth <= window.innerWidth + 1"),
          "at 390 px nothing is wider than the screen")
    a.shot("phone")
    a.d.set_window_size(1400, 900)

    # --- logout ends the session
    a.d.find_element(By.ID, "logout").click()
    check(wait_for("the login form", a.login_shown, 10), "Log out returns to the login form")
    check(a.fetch("GET", "/session")["status"] == 401, "after logout /session answers 401")
    errs = a.errors()
    check(not errs, "no script errors in the page (%s)" % errs)

    pc.stop()
    procs.remove(pc)
    C.stop_checked(d)
    procs.remove(d)

    # --- an expired session: a daemon with console-session-timeout = 3
    d2 = Daemon(tmp, "d2", image, timeout_s=3)
    d2.start()
    procs.append(d2)
    base2 = "https://127.0.0.1:%d" % d2.cport
    a.base = base2
    a.d.get(base2 + "/")
    wait_for("the login form", a.login_shown, 20)
    a.login(PASSWORD)
    check(wait_for("the app", a.app_shown, 20), "logged in to the daemon with a 3 s idle timeout")
    a.js("clearInterval(P.timer)")   # the page's 2 s poll would keep the session alive
    time.sleep(4.5)
    a.d.find_element(By.CSS_SELECTOR, '#nav a[data-page="events"]').click()
    check(wait_for("the login form", a.login_shown, 10), "after 4 s idle the next click returns to the login form")
    note = a.d.find_element(By.ID, "login-note").text
    check("expired" in note, "the login form says the session expired (%r)" % note)
    a.shot("expired")
    C.stop_checked(d2)
    procs.remove(d2)


if __name__ == "__main__":
    main()
