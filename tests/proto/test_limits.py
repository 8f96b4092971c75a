#!/usr/bin/env python3
"""Limits of the iSCSI side, set small in the configuration file.

max-sessions-per-initiator = 3, max-logins-per-address = 4,
max-connections = 12, login-timeout = 3, send-timeout = 3.  Checked:
- an initiator gets 3 sessions (different ISIDs); the 4th is refused
  with 0x0302 (out of resources) and logged; re-logging in with the ISID
  of a live session reinstates it (not counted as another); another
  initiator is not affected;
- a login that stalls half-way is closed after login-timeout;
- a slowloris from one address keeps at most 4 logins in progress, the
  rest are closed at once, and a second address logs in meanwhile;
- at max-connections a new connection is closed at once (logged once a
  second at most), and a slot freed by a logout is usable again;
- a client that stops reading its responses is dropped after
  send-timeout, its session ends, and it does not hold the daemon.
"""
import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

SERVER = """nop-interval = 0
max-sessions-per-initiator = 3
max-logins-per-address = 4
max-connections = 12
login-timeout = 3
send-timeout = 3
"""
BODY = "[defaults]\nenroll = auto\n"
INI = "iqn.2024-01.test.limits:pc"


def closed_within(sock, secs):
    """True if the peer closes sock within secs."""
    sock.settimeout(0.2)
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            if sock.recv(4096) == b"":
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def half_login(d, source="127.0.0.1"):
    """A connection that sends 30 bytes of a Login Request and stops."""
    c = socket.create_connection((d.host, d.port), timeout=5, source_address=(source, 0))
    bhs = bytearray(48)
    bhs[0] = 0x43
    bhs[1] = 0x87
    struct.pack_into(">I", bhs, 4, 200)
    c.sendall(bytes(bhs[:30]))
    return c


def main():
    d = I.ConfDaemon(body=BODY, server_extra=SERVER, mib=64, writable=True)
    if not d.available():
        print("build/asan/pristined is not built")
        return 77
    check = I.Checker()
    d.start()

    def login(name=INI, isid=None, source=None):
        s = d.session(initiator_name=name, isid=isid, source=source)
        s.login()
        return s

    def per_initiator():
        p = []
        live = [login() for _ in range(3)]
        try:
            extra = d.session(initiator_name=INI)
            try:
                extra.login()
                p.append("a 4th session of one initiator logged in")
            except I.LoginFailed as e:
                if (e.status_class, e.status_detail) != (3, 2):
                    p.append("4th session refused with 0x%02x%02x, expected 0x0302" %
                             (e.status_class, e.status_detail))
            finally:
                extra.close()
            if not re.search(r"login refused \(0x0302\): this initiator has 3 sessions already "
                             r"\(the limit\) \[initiator %s\]" % re.escape(INI), d.log()):
                p.append("the refusal is not logged")
            # reinstating the port of a live session is not a 4th session
            again = login(isid=live[0].isid)
            t = again.read(0, 1)
            if bytes(t.data) != d.expected[:512]:
                p.append("reinstated session reads wrong data")
            live[0].close()
            live[0] = again
            other = login(name=INI + "-other")
            other.logout()
            other.close()
        except I.ISCSIError as e:
            p.append(str(e))
        for s in live:
            try:
                s.logout()
            except I.ISCSIError:
                pass
            s.close()
        time.sleep(0.2)
        try:
            s = login()
            s.logout()
            s.close()
        except I.ISCSIError as e:
            p.append("after the logouts the initiator cannot log in: %s" % e)
        return p
    check.case("sessions per initiator", per_initiator)

    def login_timeout():
        c = half_login(d, "127.0.0.3")
        t0 = time.monotonic()
        ok = closed_within(c, 8)
        dt = time.monotonic() - t0
        c.close()
        if not ok:
            return ["a stalled login was still open after 8s (login-timeout 3)"]
        if dt < 1.5:
            return ["a stalled login was closed after %.1fs, before login-timeout" % dt]
        if "login not finished within 3s, closing" not in d.log():
            return ["the login time-out is not logged"]
        print("     (stalled login closed after %.1fs)" % dt)
        return []
    check.case("login time-out", login_timeout)

    def slowloris():
        p = []
        conns = [half_login(d, "127.0.0.4") for _ in range(10)]
        time.sleep(0.5)
        kept = [c for c in conns if not closed_within(c, 0.3)]
        if len(kept) != 4:
            p.append("%d of 10 half-open logins from one address kept, expected 4" % len(kept))
        try:
            s = login(name=INI + "-b", source="127.0.0.5")
            s.logout()
            s.close()
        except I.ISCSIError as e:
            p.append("a second address cannot log in beside the slowloris: %s" % e)
        for c in conns:
            c.close()
        return p
    check.case("slowloris from one address", slowloris)

    def max_connections():
        p = []
        time.sleep(0.5)
        sess = []
        try:
            for i in range(12):
                sess.append(login(name="%s-m%d" % (INI, i), source="127.0.0.%d" % (10 + i)))
        except I.ISCSIError as e:
            p.append("only %d sessions before the limit of 12: %s" % (len(sess), e))
        refused = 0
        for i in range(5):
            c = socket.create_connection((d.host, d.port), timeout=5,
                                         source_address=("127.0.0.%d" % (40 + i), 0))
            if closed_within(c, 2):
                refused += 1
            c.close()
        if refused != 5:
            p.append("%d of 5 connections past max-connections were closed" % refused)
        lines = re.findall(r"connection refused: connection limit reached", d.log())
        if not lines:
            p.append("connection-limit refusals are not logged")
        # the 5 refusals come within well under a second: one line, the
        # others counted in the next one (at most one a second)
        if len(lines) > 1:
            p.append("%d log lines for 5 refusals within a second" % len(lines))
        if sess:
            sess[0].logout()
            sess[0].close()
            time.sleep(0.3)
            try:
                s = login(name=INI + "-late", source="127.0.0.60")
                s.logout()
                s.close()
            except I.ISCSIError as e:
                p.append("a freed slot cannot be used: %s" % e)
        for s in sess[1:]:
            s.logout()
            s.close()
        return p
    check.case("max-connections", max_connections)

    def stops_reading():
        p = []
        time.sleep(0.5)
        s = d.session(initiator_name=INI + "-stall", source="127.0.0.70")
        s.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.login()
        for i in range(32):    # 32 x 1 MiB of reads, never read back
            s.submit(I.cdb_read10(i * 2048, 2048), read_len=2048 * 512)
        t0 = time.monotonic()
        pat = re.compile(r"127\.0\.0\.70:\d+: peer stopped reading for 3s, closing")
        while time.monotonic() - t0 < 20 and not pat.search(d.log()):
            time.sleep(0.2)
        dt = time.monotonic() - t0
        if not pat.search(d.log()):
            p.append("a client that stopped reading was not dropped within 20s (send-timeout 3)")
        else:
            print("     (dropped %.1fs after its last command)" % dt)
        s.close()
        try:
            o = login(name=INI + "-after", source="127.0.0.71")
            t = o.read(100, 8)
            if bytes(t.data) != d.expected[100 * 512:108 * 512]:
                p.append("wrong data after the stalled client")
            o.logout()
            o.close()
        except I.ISCSIError as e:
            p.append("the daemon does not serve after the stalled client: %s" % e)
        return p
    check.case("a client that stops reading is dropped", stops_reading)

    return check.finish_with(d)


if __name__ == "__main__":
    sys.exit(main())
