#!/usr/bin/env python3
"""Malformed and hostile input against pristined.

Every case runs on its own connection.  After each case:
  (a) the daemon is still running,
  (b) a healthy session opened at the start (kept logged in) still reads
      the right bytes and answers a NOP,
  (c) the hostile connection got a Reject PDU / a failed Login Response, or
      was closed by the target -- never a hang (every wait is bounded).
Exit 0 pass, 77 skip (no daemon built), 1 fail."""

import os
import re
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

HEALTHY = "iqn.2024-01.test.pristine:healthy"
HOSTILE = "iqn.2024-01.test.pristine:hostile"
D = None
H = None          # the healthy session
WAIT = 10.0       # bound on any single wait for the target's reaction


# ---------------------------------------------------------------- helpers

def note(msg):
    print("     (%s)" % msg)


def outcome(conn, timeout=WAIT, ignore_itts=()):
    """Wait for the target's reaction on a hostile connection.  Returns
    ('reject', pdu) | ('login-fail', pdu) | ('closed', None) |
    ('timeout', None) | ('other', pdu)."""
    deadline = time.monotonic() + timeout
    for _ in range(64):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            p = conn.recv_pdu(left)
        except I.ConnectionClosed:
            return "closed", None
        except I.Timeout:
            return "timeout", None
        except I.DigestError as e:
            return "other", e
        except OSError:
            return "closed", None
        if p.opcode == I.OP_REJECT:
            return "reject", p
        if p.opcode == I.OP_LOGIN_RESP and p.status_class != 0:
            return "login-fail", p
        if p.opcode == I.OP_NOP_IN and p.itt == I.RSVD_TAG:
            continue                      # target ping: not a reaction
        if p.opcode == I.OP_ASYNC:
            continue
        if p.itt in ignore_itts:
            continue
        return "other", p
    return "timeout", None


def want_reject_or_close(what, conn, timeout=WAIT, also=()):
    kind, p = outcome(conn, timeout)
    note("%s -> %s%s" % (what, kind, " reason 0x%02x" % p.reason if kind == "reject" else
                          (" %r" % p if p is not None else "")))
    if kind in ("reject", "closed", "login-fail") or kind in also:
        return kind, p, []
    if kind == "timeout":
        return kind, p, ["%s: no Reject and connection not closed within %.0fs (hang)" % (what, timeout)]
    return kind, p, ["%s: answered with %r instead of a Reject or closing" % (what, p)]


def hostile_session(**kw):
    s = D.session(HOSTILE, timeout=WAIT)
    s.login(**kw)
    return s


def raw_connection():
    return I.Connection(D.host, D.port, WAIT)


def login_bhs(s, text_len, flags=None):
    if flags is None:
        flags = 0x80 | (I.SECURITY << 2) | I.OPERATIONAL
    s._login_itt = s.next_itt()
    return I.build_login(flags, s.isid, 0, s._login_itt, 0, s.cmdsn, 0, text_len)


def bhs_with(opcode, dsl=0, ahs_words=0, itt=0x1234, fill=0):
    b = bytearray([fill]) * 48
    b[0] = opcode
    b[1] = 0x80
    b[4] = ahs_words
    b[5:8] = I.dsl_bytes(dsl)
    b[8:16] = bytes(8)
    b[16:20] = struct.pack(">I", itt)
    return bytes(b)


def session_still_works(s, what):
    """After a Reject the connection should go on working."""
    try:
        p = s.nop(b"after-reject", timeout=WAIT)
        if p.opcode != I.OP_NOP_IN:
            return ["%s: after the Reject, a NOP-Out was answered with %s" % (what, p.name)]
    except I.ConnectionClosed:
        return []        # closing after the Reject is acceptable too
    except I.ISCSIError as e:
        return ["%s: after the Reject, the connection neither works nor is closed: %s" % (what, e)]
    return []


def health(label):
    p = []
    if not D.alive():
        return ["pristined is no longer running after '%s'" % label]
    try:
        t = H.read(0, 16, timeout=WAIT)
        if t.status != I.GOOD or bytes(t.data) != D.expected[:16 * 512]:
            p.append("healthy session read wrong after '%s' (status %r)" % (label, t.status))
        n = H.nop(b"ping", timeout=WAIT)
        if n.opcode != I.OP_NOP_IN:
            p.append("healthy session NOP answered with %s after '%s'" % (n.name, label))
    except Exception as e:
        p.append("healthy session broken after '%s': %s: %s" % (label, type(e).__name__, e))
    if H.violations:
        p += ["healthy session: " + v for v in H.violations]
        del H.violations[:]
    return p


# ---------------------------------------------------------------- cases

def case_unknown_opcode_login(opcode):
    c = raw_connection()
    c.send_raw(bhs_with(opcode | I.IMMEDIATE))
    kind, p, probs = want_reject_or_close("opcode 0x%02x as the first PDU" % opcode, c)
    c.close()
    return probs


def case_unknown_opcode_ffp(opcode):
    s = hostile_session()
    b = bytearray(bhs_with(opcode, itt=s.next_itt()))
    b[24:28] = struct.pack(">I", s.cmdsn)
    b[28:32] = struct.pack(">I", s.expstatsn)
    s.conn.send_pdu(bytes(b))
    kind, p, probs = want_reject_or_close("opcode 0x%02x in full feature phase" % opcode, s.conn)
    if kind == "reject":
        if p.reason not in (0x04, 0x05, 0x09):
            probs.append("Reject reason 0x%02x for an unknown opcode (RFC 7143 11.17.1: 0x05 "
                         "Command not supported, or 0x04 Protocol Error)" % p.reason)
        if p.data[:48] != bytes(b):
            probs.append("Reject does not carry the rejected BHS (RFC 7143 11.17)")
        probs += session_still_works(s, "unknown opcode 0x%02x" % opcode)
    s.close()
    return probs


def case_dsl_beyond_mrdsl():
    s = hostile_session()
    n = s.params.target_max_recv_dsl + 4096
    itt = s.next_itt()
    bhs = I.build_nop_out(itt, I.RSVD_TAG, s.cmdsn, s.expstatsn, n)
    s.conn.send_pdu(bhs, b"\x5a" * n)
    kind, p, probs = want_reject_or_close("NOP-Out with DataSegmentLength %d > MaxRecvDataSegmentLength %d"
                                          % (n, s.params.target_max_recv_dsl), s.conn)
    s.close()
    return probs


def case_dsl_beyond_mrdsl_header_only():
    """Only the BHS of a NOP-Out announcing DataSegmentLength > MRDSL: the
    header alone is a protocol error; the target must not wait for the data."""
    s = hostile_session()
    n = s.params.target_max_recv_dsl + 4096
    bhs = I.build_nop_out(s.next_itt(), I.RSVD_TAG, s.cmdsn, s.expstatsn, n)
    s.conn.send_pdu(bhs)
    kind, p, probs = want_reject_or_close("BHS alone announcing DataSegmentLength %d > MRDSL %d"
                                          % (n, s.params.target_max_recv_dsl), s.conn)
    s.close()
    return probs


def case_dsl_huge_header_only():
    """DataSegmentLength 16 MiB-1 announced, 1 KiB sent, then close."""
    s = hostile_session()
    bhs = I.build_nop_out(s.next_itt(), I.RSVD_TAG, s.cmdsn, s.expstatsn, I.MAX_DSL)
    s.conn.send_raw(bhs + b"\0" * 1024)
    kind, p = outcome(s.conn, 2.0)
    s.close()
    return []


def case_data_longer_than_declared():
    s = hostile_session()
    itt = s.next_itt()
    bhs = I.build_nop_out(itt, I.RSVD_TAG, s.cmdsn, s.expstatsn, 8)
    extra = bytearray(b"\xee" * 100)
    extra[4] = 0          # no AHS: the target can judge the garbage header at once
    s.conn.send_raw(bhs + b"12345678" + bytes(extra))
    # the 100 extra bytes are read as the next BHS: opcode 0x2e, DataSegmentLength
    # 0xeeeeee > MaxRecvDataSegmentLength -- a protocol error visible in the header
    probs = []
    deadline = time.monotonic() + WAIT
    got_nop = False
    while time.monotonic() < deadline:
        kind, p = outcome(s.conn, deadline - time.monotonic())
        if kind == "other" and getattr(p, "opcode", None) == I.OP_NOP_IN and p.itt == itt:
            got_nop = True
            continue
        if kind in ("reject", "closed"):
            note("NOP-Out + 100 extra bytes -> NOP-In echoed: %s, then %s" % (got_nop, kind))
            break
        probs.append("NOP-Out followed by 100 extra bytes: %s %r (expected Reject or close)" % (kind, p))
        break
    s.close()
    return probs


def case_data_shorter_then_close():
    s = hostile_session()
    bhs = I.build_nop_out(s.next_itt(), I.RSVD_TAG, s.cmdsn, s.expstatsn, 1000)
    s.conn.send_raw(bhs + b"x" * 500)
    time.sleep(0.2)
    s.close()
    return []


def case_half_bhs_then_close(in_login):
    if in_login:
        c = raw_connection()
        s = D.session(HOSTILE)
        c.send_raw(login_bhs(s, 100)[:24])
    else:
        s = hostile_session()
        c = s.conn
        c.send_raw(I.build_nop_out(s.next_itt(), I.RSVD_TAG, s.cmdsn, s.expstatsn, 0)[:20])
    time.sleep(0.2)
    c.close()
    return []


def case_half_login_data_then_close():
    c = raw_connection()
    s = D.session(HOSTILE)
    text = I.encode_keys([("InitiatorName", HOSTILE), ("TargetName", D.target)])
    c.send_raw(login_bhs(s, len(text)) + text[:len(text) // 2])
    time.sleep(0.2)
    c.close()
    return []


def case_total_ahs_huge():
    s = hostile_session()
    itt = s.next_itt()
    bhs = bytearray(I.build_scsi_cmd(0xC1, D.lun, itt, 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_read10(0, 8), 0))
    bhs[4] = 255                      # 1020 bytes of AHS
    s.conn.send_pdu(bytes(bhs), ahs=b"\xa5" * 1020)
    kind, p, probs = want_reject_or_close("SCSI Command with TotalAHSLength 255 words of garbage",
                                          s.conn, also=("other",))
    if kind == "other":
        if p.opcode == I.OP_SCSI_RESP and p.status == I.CHECK_CONDITION:
            pass                       # rejected as a SCSI error: acceptable
        elif p.opcode == I.OP_DATA_IN:
            probs.append("command with 1020 bytes of garbage AHS was executed (Data-In)")
        else:
            probs.append("garbage AHS answered with %r" % p)
    s.close()
    return probs


def case_bidirectional():
    """A READ(10) with W set and a Bidirectional Read Expected Data Transfer
    Length AHS: we serve no bidirectional commands, so the answer must be
    CHECK CONDITION with sense data saying why (ILLEGAL REQUEST), and the
    session must go on."""
    s = hostile_session()
    itt = s.next_itt()
    bhs = bytearray(I.build_scsi_cmd(0xE1, D.lun, itt, 0, s.cmdsn, s.expstatsn,
                                     I.cdb_read10(0, 8), 0))
    bhs[4] = 2                        # 8 bytes of AHS
    ahs = bytes([0, 5, 2, 0]) + (4096).to_bytes(4, "big")   # AHSLength 5, type 2
    s.conn.send_pdu(bytes(bhs), ahs=ahs)
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    probs = []
    try:
        p = s.conn.recv_pdu(WAIT)
    except I.ISCSIError as e:
        s.close()
        return ["no answer to a bidirectional command: %s" % e]
    sense = p.data[2:] if len(p.data) > 2 else b""
    if p.opcode != I.OP_SCSI_RESP or p.status != I.CHECK_CONDITION:
        probs.append("bidirectional command answered with %r" % p)
    elif len(sense) < 14 or (sense[2] & 0x0f) != 0x05:
        probs.append("CHECK CONDITION without ILLEGAL REQUEST sense: %r" % sense[:18])
    s.expstatsn = (p.statsn + 1) & 0xFFFFFFFF
    t = s.read(0, 1, timeout=WAIT)
    if t.status != I.GOOD:
        probs.append("session unusable after a bidirectional command")
    s.close()
    return probs


def case_total_ahs_huge_nop():
    s = hostile_session()
    bhs = bytearray(I.build_nop_out(s.next_itt(), I.RSVD_TAG, s.cmdsn, s.expstatsn, 0))
    bhs[4] = 255
    s.conn.send_pdu(bytes(bhs), ahs=b"\x00" * 1020)
    kind, p, probs = want_reject_or_close("NOP-Out with TotalAHSLength 255", s.conn, also=("other",))
    s.close()
    return probs


def case_cmdsn_outside_window():
    """RFC 7143 4.2.2.1: non-immediate commands with CmdSN outside
    [ExpCmdSN, MaxCmdSN] MUST be silently ignored by the target.  The
    session must go on with the right CmdSN."""
    s = hostile_session()
    s.ready()
    probs = []
    itt = s.next_itt()
    far = (s.cmdsn + 0x40000000) & 0xFFFFFFFF
    bhs = I.build_scsi_cmd(0xC1, D.lun, itt, 4096, far, s.expstatsn, I.cdb_read10(0, 8), 0)
    s.conn.send_pdu(bhs)
    kind, p = outcome(s.conn, 2.0)
    note("READ with CmdSN ExpCmdSN+2^30 -> %s %r" % (kind, p))
    if kind == "closed":
        s.close()
        return []
    if kind == "other":
        probs.append("command with CmdSN far outside the window was executed: %r" % p)
    t = s.read(0, 8, timeout=WAIT)
    if t.status != I.GOOD or bytes(t.data) != D.expected[:8 * 512]:
        probs.append("READ with the right CmdSN after an out-of-window one failed (status %r)" % t.status)
    # behind the window, too
    itt = s.next_itt()
    old = (s.cmdsn - 1000) & 0xFFFFFFFF
    s.conn.send_pdu(I.build_scsi_cmd(0xC1, D.lun, itt, 4096, old, s.expstatsn, I.cdb_read10(8, 8), 0))
    kind, p = outcome(s.conn, 2.0)
    note("READ with CmdSN ExpCmdSN-1000 -> %s %r" % (kind, p))
    if kind == "other":
        probs.append("command with CmdSN 1000 behind ExpCmdSN was executed: %r" % p)
    if kind != "closed":
        t = s.read(8, 8, timeout=WAIT)
        if bytes(t.data) != D.expected[8 * 512:16 * 512]:
            probs.append("READ after a stale-CmdSN command failed")
    probs += s.violations
    s.close()
    return probs


def case_login_in_ffp():
    s = hostile_session()
    text = I.encode_keys([("InitiatorName", HOSTILE), ("TargetName", D.target)])
    bhs = I.build_login(0x80 | (I.SECURITY << 2) | I.OPERATIONAL, s.isid, s.tsih, s.next_itt(), 0,
                        s.cmdsn, s.expstatsn, len(text))
    s.conn.send_pdu(bhs, text)
    kind, p, probs = want_reject_or_close("Login Request in full feature phase", s.conn)
    s.close()
    return probs


def login_outcome(keys_raw, what, ok_if=None):
    """Log in with raw operational text; the target must fail the login,
    answer Reject/NotUnderstood (ok_if decides), or close."""
    s = D.session(HOSTILE, timeout=WAIT)
    try:
        r = s.login(op_keys=keys_raw, raise_on_fail=False)
    except I.ConnectionClosed:
        note("%s -> connection closed" % what)
        s.close()
        return []
    except I.ISCSIError as e:
        if s.rejects:
            note("%s -> Reject PDU reason 0x%02x during login" % (what, s.rejects[-1].reason))
            s.close()
            return []
        s.close()
        return ["%s: %s" % (what, e)]
    except I.Timeout:
        s.close()
        return ["%s: no Login Response and not closed within %.0fs" % (what, WAIT)]
    probs = []
    note("%s -> login status 0x%02x/0x%02x%s" % (what, r.status_class, r.status_detail,
                                                 "" if r.status_class else
                                                 ", answers %r" % s.answers_list[-6:]))
    if r.status_class == 0:
        if ok_if is None or not ok_if(s):
            probs.append("%s: login succeeded; answers %r" % (what, s.answers_list[-12:]))
        else:
            try:
                s.ready()
                t = s.read(0, 64, timeout=WAIT)
                if bytes(t.data) != D.expected[:64 * 512]:
                    probs.append("%s: login accepted but reads are wrong" % what)
                probs += s.violations
                s.logout(timeout=WAIT)
            except I.ISCSIError as e:
                probs.append("%s: login accepted but the session does not work: %s" % (what, e))
    elif r.status_class == 3:
        probs.append("%s: status class 0x03 (target error) for an initiator error" % what)
    s.close()
    return probs


def answered(key, *values):
    return lambda s: any(k == key and v in values for k, v in s.answers_list)


LOGIN_KEY_CASES = [
    ("MaxRecvDataSegmentLength=0", b"MaxRecvDataSegmentLength=0\0",
     answered("MaxRecvDataSegmentLength", "Reject")),
    ("MaxRecvDataSegmentLength=99999999", b"MaxRecvDataSegmentLength=99999999\0",
     answered("MaxRecvDataSegmentLength", "Reject")),
    ("MaxRecvDataSegmentLength=-1", b"MaxRecvDataSegmentLength=-1\0",
     answered("MaxRecvDataSegmentLength", "Reject")),
    ("HeaderDigest=Bogus", b"HeaderDigest=Bogus\0", answered("HeaderDigest", "Reject")),
    ("DataDigest= (empty)", b"DataDigest=\0", answered("DataDigest", "Reject")),
    ("1000 unknown keys", b"".join(b"X-test.key%04d=value\0" % i for i in range(1000)),
     lambda s: all(s.answers.get("X-test.key%04d" % i) == "NotUnderstood" for i in range(1000))),
    ("key without '='", b"MaxBurstLength\0", answered("MaxBurstLength", "Reject", "NotUnderstood")),
    ("empty key name", b"=5\0", lambda s: any(k == "" for k, v in s.answers_list)),
    ("10 KB value of an unknown key", b"X-test.big=" + b"v" * 10240 + b"\0",
     answered("X-test.big", "Reject", "NotUnderstood")),
    ("10 KB value of a known key", b"MaxBurstLength=" + b"1" * 10240 + b"\0",
     answered("MaxBurstLength", "Reject")),
    ("key name of 300 bytes", b"X-" + b"k" * 298 + b"=1\0",
     answered("X-" + "k" * 298, "Reject", "NotUnderstood")),
    ("non-UTF8 value", b"MaxBurstLength=\xff\xfe\0", answered("MaxBurstLength", "Reject")),
    ("no NUL terminator", b"MaxBurstLength=65536", lambda s: True),
    ("only NULs", b"\0" * 64, lambda s: True),
]


def case_login_key(what, raw, ok):
    return login_outcome(raw, what, ok)


def case_initiator_name_path(name):
    """InitiatorName values that are not valid iSCSI names (RFC 3720 3.2.6.2:
    no '/', no spaces) and look like paths: pristined keys per-client state
    by the initiator name, so it must refuse them or keep them inside --state."""
    probs = []
    s = D.session(name, timeout=WAIT)
    try:
        r = s.login(raise_on_fail=False)
        note("InitiatorName %r -> login status 0x%02x/0x%02x" % (name, r.status_class, r.status_detail))
        if r.status_class == 0:
            probs.append("invalid iSCSI name %r accepted as InitiatorName (RFC 3720 3.2.6.2 / RFC 3722)" % name)
            try:
                s.ready()
                s.write(9500, b"\x77" * 4096)
                s.logout(timeout=WAIT)
            except I.ISCSIError:
                pass
    except I.ConnectionClosed:
        note("InitiatorName %r -> closed" % name)
    finally:
        s.close()
    if D.proc is not None:
        allowed = {"disk.img", "state", "pristined.log"}
        for root, dirs, files in os.walk(D.tmp):
            rel = os.path.relpath(root, D.tmp)
            if rel == ".":
                extra = set(dirs + files) - allowed
                if extra:
                    probs.append("files created outside --state: %r" % sorted(extra))
        for root in ("/tmp/escape", "/escape"):
            if os.path.exists(root):
                probs.append("%s exists after InitiatorName %r" % (root, name))
    return probs


def case_non_utf8_initiator_name():
    probs = []
    s = D.session(HOSTILE, timeout=WAIT)
    try:
        text = I.encode_keys([(b"InitiatorName", b"iqn.2024-01.test:\xff\xfe\xc0\x80"),
                              ("TargetName", D.target), ("SessionType", "Normal"), ("AuthMethod", "None")])
        s.conn.send_pdu(login_bhs(s, len(text), 0x80 | (I.SECURITY << 2) | I.OPERATIONAL), text)
        kind, p = outcome(s.conn)
        note("non-UTF8 InitiatorName -> %s %r" % (kind, p))
        if kind not in ("login-fail", "closed", "reject"):
            probs.append("non-UTF8 InitiatorName: %s %r, expected a failed login" % (kind, p))
    finally:
        s.close()
    return probs


def case_big_login_text():
    """A Login Request text of 100 KiB over C-bit PDUs: the target must cope
    (answer, fail the login, or close) without hanging or crashing."""
    raw = b"".join(b"X-test.k%05d=%s\0" % (i, b"v" * 80) for i in range(1100))
    return login_outcome(raw, "100 KiB of login keys over C-bit PDUs",
                         lambda s: True)


def case_text_over_64k():
    s = hostile_session()
    raw = b"".join(b"X-test.k%05d=%s\0" % (i, b"w" * 100) for i in range(700))   # ~80 KB
    probs = []
    try:
        pairs, last = s.text(raw, timeout=WAIT, max_rounds=64)
        note("Text of %d bytes -> %s" % (len(raw), ("%d keys answered, e.g. %r" % (len(pairs), pairs[:2]))
                                          if pairs is not None else repr(last)))
        if pairs is None and last.opcode != I.OP_REJECT:
            probs.append("Text over 64 KiB answered with %r" % last)
    except (I.ConnectionClosed, OSError):
        note("Text of %d bytes -> connection closed" % len(raw))
    except I.Timeout as e:
        probs.append("Text over 64 KiB: %s (hang)" % e)
    s.close()
    return probs


def case_data_out_unknown_itt():
    s = hostile_session()
    bhs = I.build_data_out(True, D.lun, 0xDEAD0001, 0xBEEF0001, s.expstatsn, 0, 0, 512)
    s.conn.send_pdu(bhs, b"\x11" * 512)
    kind, p, probs = want_reject_or_close("Data-Out for an unknown ITT/TTT", s.conn)
    if kind == "reject":
        probs += session_still_works(s, "Data-Out unknown ITT")
    s.close()
    return probs


def case_data_out_unknown_ttt():
    """A write waiting for its R2T gets a Data-Out with the right ITT but a
    TTT the target never issued."""
    s = hostile_session(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    probs = []
    itt = s.next_itt()
    bhs = I.build_scsi_cmd(0xA1, D.lun, itt, 4096, s.cmdsn, s.expstatsn, I.cdb_write10(9000, 8), 0)
    s.conn.send_pdu(bhs)
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    kind, r2t = outcome(s.conn, WAIT)
    if kind != "other" or r2t.opcode != I.OP_R2T:
        s.close()
        return ["WRITE with InitialR2T=Yes: expected an R2T, got %s %r" % (kind, r2t)]
    bad_ttt = (r2t.ttt ^ 0x5A5A5A5A) & 0xFFFFFFFF
    s.conn.send_pdu(I.build_data_out(True, D.lun, itt, bad_ttt, s.expstatsn, 0, 0, 4096), b"\x22" * 4096)
    kind, p, probs = want_reject_or_close("Data-Out with a TTT the target did not issue", s.conn,
                                          also=("other",))
    if kind == "other":
        if p.opcode == I.OP_SCSI_RESP and p.status == I.GOOD:
            probs.append("Data-Out with a wrong TTT completed the WRITE with GOOD")
        elif p.opcode != I.OP_SCSI_RESP:
            probs.append("Data-Out with a wrong TTT answered with %r" % p)
    s.close()
    return probs


def case_data_out_beyond_edtl():
    """Unsolicited Data-Out running past the Expected Data Transfer Length."""
    s = hostile_session(op_keys=[("InitialR2T", "No"), ("ImmediateData", "No"),
                                 ("FirstBurstLength", 65536)])
    s.ready()
    if s.params.initial_r2t:
        # the target insists on InitialR2T=Yes: use the R2T instead
        s.close()
        return case_data_out_beyond_r2t()
    itt = s.next_itt()
    s.conn.send_pdu(I.build_scsi_cmd(0x21, D.lun, itt, 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_write10(9100, 8), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    s.conn.send_pdu(I.build_data_out(True, D.lun, itt, I.RSVD_TAG, s.expstatsn, 0, 0, 8192), b"\x33" * 8192)
    kind, p, probs = want_reject_or_close("unsolicited Data-Out of 8192 bytes for EDTL 4096", s.conn,
                                          also=("other",))
    if kind == "other" and not (p.opcode == I.OP_SCSI_RESP and p.status != I.GOOD) \
            and not (p.opcode == I.OP_SCSI_RESP and p.overflow):
        probs.append("Data-Out beyond EDTL answered with %r (status %r)" % (p, getattr(p, "status", None)))
    s.close()
    probs += check_unchanged(9108, 8)
    return probs


def case_data_out_beyond_r2t():
    s = hostile_session(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    itt = s.next_itt()
    s.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_write10(9200, 8), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    kind, r2t = outcome(s.conn, WAIT)
    if kind != "other" or r2t.opcode != I.OP_R2T:
        s.close()
        return ["WRITE with InitialR2T=Yes: expected an R2T, got %s %r" % (kind, r2t)]
    s.conn.send_pdu(I.build_data_out(True, D.lun, itt, r2t.ttt, s.expstatsn, 0, 0, 8192), b"\x44" * 8192)
    kind, p, probs = want_reject_or_close("solicited Data-Out of 8192 bytes for an R2T of %d / EDTL 4096"
                                          % r2t.ddtl, s.conn, also=("other",))
    if kind == "other" and not (p.opcode == I.OP_SCSI_RESP and (p.status != I.GOOD or p.overflow)):
        probs.append("Data-Out beyond the R2T/EDTL answered with %r (status %r)" % (p, getattr(p, "status", None)))
    s.close()
    probs += check_unchanged(9208, 8)
    return probs


def case_data_out_wrong_offset():
    """DataPDUInOrder=Yes: a Data-Out answering an R2T at the wrong
    BufferOffset and DataSN.  ERL 0: Reject / close / CHECK CONDITION."""
    s = hostile_session(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    itt = s.next_itt()
    s.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_write10(9400, 8), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    kind, r2t = outcome(s.conn, WAIT)
    if kind != "other" or r2t.opcode != I.OP_R2T:
        s.close()
        return ["WRITE with InitialR2T=Yes: expected an R2T, got %s %r" % (kind, r2t)]
    s.conn.send_pdu(I.build_data_out(False, D.lun, itt, r2t.ttt, s.expstatsn, 5, 2048, 2048), b"\x55" * 2048)
    s.conn.send_pdu(I.build_data_out(True, D.lun, itt, r2t.ttt, s.expstatsn, 9, 0, 2048), b"\x55" * 2048)
    kind, p, probs = want_reject_or_close("Data-Out at offset 2048/DataSN 5 then 0/DataSN 9", s.conn,
                                          also=("other",))
    if kind == "other" and not (p.opcode == I.OP_SCSI_RESP and p.status != I.GOOD):
        probs.append("out-of-order Data-Out (DataPDUInOrder=Yes) answered with %r status %r"
                     % (p, getattr(p, "status", None)))
    s.close()
    return probs


def case_duplicate_itt():
    """Two commands in flight with the same ITT (RFC 7143 11.2.1.8: the ITT
    must be unique within the session): Reject, close, or answer both; the
    daemon must survive (task table)."""
    s = hostile_session(op_keys=[("MaxRecvDataSegmentLength", 65536)])
    s.ready()
    itt = s.next_itt()
    for k in range(3):
        s.conn.send_pdu(I.build_scsi_cmd(0xC1, D.lun, itt, 65536, s.cmdsn, s.expstatsn,
                                         I.cdb_read10(k * 128, 128), 0))
        s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    kinds = []
    done = 0
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline and len(kinds) < 200:
        kind, p = outcome(s.conn, max(0.1, min(2.0, deadline - time.monotonic())))
        kinds.append(kind if kind != "other" else p.name)
        if kind == "other" and (p.opcode == I.OP_SCSI_RESP or (p.opcode == I.OP_DATA_IN and p.has_status)):
            done += 1
        if kind == "other":
            s._update_sn(p) if p.opcode != I.OP_DATA_IN or p.has_status else None
        if kind in ("closed", "timeout"):
            break
    note("3 READs with the same ITT -> %d completed; PDUs: %s" % (done, ", ".join(sorted(set(kinds)))))
    probs = []
    if kinds and kinds[-1] != "closed":
        try:
            t = s.read(0, 8, timeout=WAIT)
            if bytes(t.data) != D.expected[:4096]:
                probs.append("after 3 READs with one ITT, a READ returns wrong data")
        except I.ConnectionClosed:
            pass
        except I.ISCSIError as e:
            probs.append("after 3 READs with one ITT (%d completed), the session neither works nor is "
                         "closed: %s" % (done, e))
    s.close()
    return probs


def case_reserved_itt():
    s = hostile_session()
    s.conn.send_pdu(I.build_scsi_cmd(0xC1, D.lun, I.RSVD_TAG, 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_read10(0, 8), 0))
    kind, p, probs = want_reject_or_close("SCSI Command with ITT 0xffffffff", s.conn, also=("other",))
    if kind == "other":
        probs.append("SCSI Command with the reserved ITT 0xffffffff answered with %r "
                     "(RFC 7143 11.2.1.8: the value 0xffffffff is reserved and MUST NOT be assigned "
                     "to a task by the initiator)" % p)
    s.close()
    return probs


def case_logout_reasons():
    probs = []
    for reason in (1, 2, 0x7F):
        s = hostile_session()
        try:
            r = s.logout(reason=reason, timeout=WAIT)
            note("Logout reason %d -> %s response %r" % (reason, r.name, getattr(r, "response", None)))
            if reason == 1 and (r.opcode != I.OP_LOGOUT_RESP or r.response != 0):
                probs.append("Logout reason 1 (close connection): %r response %r"
                             % (r, getattr(r, "response", None)))
            if reason == 2 and r.opcode == I.OP_LOGOUT_RESP and r.response == 0:
                probs.append("Logout reason 2 (remove connection for recovery) succeeded at "
                             "ErrorRecoveryLevel 0 (RFC 7143 11.15.1: response 2 'connection "
                             "recovery is not supported')")
        except I.ConnectionClosed:
            note("Logout reason %d -> closed" % reason)
        except I.ISCSIError as e:
            probs.append("Logout reason %d: %s" % (reason, e))
        s.close()
    return probs


def case_commands_after_logout():
    s = hostile_session()
    itt = s.next_itt()
    s.conn.send_pdu(I.build_logout(0, itt, 0, s.cmdsn, s.expstatsn))
    s.conn.send_pdu(I.build_scsi_cmd(0xC1, D.lun, s.next_itt(), 4096, s.cmdsn, s.expstatsn,
                                     I.cdb_read10(0, 8), 0))
    seen = []
    probs = []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        kind, p = outcome(s.conn, deadline - time.monotonic())
        if kind != "other":
            seen.append(kind)
            break
        seen.append(p.name)
    note("Logout then a READ -> %s" % ", ".join(seen))
    if seen and seen[-1] == "timeout":
        probs.append("connection still open %.0fs after Logout + READ" % WAIT)
    s.close()
    return probs


# opcodes that neither write the medium nor change reservations, the unit's
# state or mode pages, plus unassigned ones
FUZZ_OPCODES = [0x00, 0x03, 0x12, 0x1A, 0x5A, 0x25, 0x28, 0x88, 0xA8, 0x2F, 0x8F, 0xAF, 0x34, 0x90,
                0x35, 0x91, 0x9E, 0xA0, 0xA3, 0x4D, 0x5E, 0x37, 0xB7, 0x1C, 0x44, 0x43, 0x46, 0x4A,
                0x51, 0x52, 0x5C, 0x02, 0x05, 0x06, 0x07, 0x0D, 0x20, 0x21, 0x22, 0x23, 0x26, 0x27,
                0x29, 0x2B, 0x31, 0x32, 0x33, 0x36, 0x38, 0x40, 0x45, 0x47, 0x49, 0x4E, 0x4F,
                0x50, 0x58, 0x59, 0x5B, 0x5D, 0x60, 0x61, 0x70, 0x8D, 0xB0, 0xC0, 0xD0, 0xE0, 0xF0,
                0xFF]


def case_cdb_fuzz(n=1000):
    """Random CDBs (non-writing opcodes, random fields) with random EDTLs and
    directions: every command must end (status, or Reject), none may hang."""
    rnd = __import__("random").Random(1234)
    s = hostile_session(op_keys=[("MaxRecvDataSegmentLength", 65536), ("InitialR2T", "No"),
                                 ("ImmediateData", "Yes")])
    s.ready()
    probs = []
    statuses = {}
    for i in range(n):
        op = rnd.choice(FUZZ_OPCODES)
        if i % 4 == 0:
            cdb = bytes([op]) + rnd.randbytes(15)
        else:                           # mostly zero: reaches deeper code paths
            b = bytearray(16)
            b[0] = op
            for _ in range(rnd.randint(1, 4)):
                b[rnd.randrange(1, 16)] = rnd.choice([0x01, 0x02, 0x08, 0x10, 0x80, 0xFF, rnd.randrange(256)])
            cdb = bytes(b)
        edtl = rnd.choice([0, 0, 8, 512, 4096, 65536, 1 << 20, 0xFFFFFFFF])
        write = edtl and edtl <= (1 << 20) and rnd.random() < 0.15
        try:
            if write:
                t = s.command(cdb, write_data=bytes(edtl), timeout=WAIT)
            else:
                t = s.command(cdb, read_len=min(edtl, 1 << 20), edtl=edtl, timeout=WAIT)
        except I.ConnectionClosed:
            probs.append("connection closed by the target at CDB %s (EDTL %d, %s)"
                         % (cdb.hex(), edtl, "W" if write else "R"))
            break
        except I.ISCSIError as e:
            probs.append("CDB %s (EDTL %d, %s): %s" % (cdb.hex(), edtl, "W" if write else "R", e))
            break
        key = "reject" if t.reject is not None else "status 0x%02x" % t.status
        statuses[key] = statuses.get(key, 0) + 1
        if not D.alive():
            probs.append("pristined died at CDB %s (EDTL %d)" % (cdb.hex(), edtl))
            break
    note("%d random CDBs -> %r" % (n, statuses))
    probs += [v for v in s.violations if "beyond the read buffer" not in v][:10]
    s.close()
    return probs


def rst_close(conn):
    """Close with a TCP RST (SO_LINGER 0)."""
    try:
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    conn.close()


def case_reset_with_reads_in_flight():
    """32 READs of 1 MiB in flight, then a TCP RST: the target writes into a
    dead socket (EPIPE/ECONNRESET, never SIGPIPE) and frees the tasks."""
    s = hostile_session(op_keys=[("MaxRecvDataSegmentLength", 262144)])
    s.ready()
    for i in range(32):
        s.submit(I.cdb_read10((i * 2048) % 30000, 2048), read_len=2048 * 512)
    time.sleep(0.05)
    rst_close(s.conn)
    time.sleep(0.5)
    return []


def case_reset_with_write_waiting():
    """A WRITE waiting for Data-Out (R2T sent) and READs queued, then RST."""
    s = hostile_session(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    itt = s.next_itt()
    s.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 65536, s.cmdsn, s.expstatsn,
                                     I.cdb_write10(9600, 128), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    s.conn.send_pdu(I.build_data_out(False, D.lun, itt, 0x1, s.expstatsn, 0, 0, 0))
    time.sleep(0.1)
    rst_close(s.conn)
    time.sleep(0.5)
    return []


def case_reinstate_with_tasks():
    """Session reinstatement while the old session has a WRITE waiting for
    data and READs in flight: the old connection is closed, its tasks are
    dropped, the new session works."""
    isid = I.new_isid()
    s1 = D.session(HOSTILE, isid=isid, timeout=WAIT)
    s1.login(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s1.ready()
    itt = s1.next_itt()
    s1.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 65536, s1.cmdsn, s1.expstatsn,
                                      I.cdb_write10(9700, 128), 0))
    s1.cmdsn = (s1.cmdsn + 1) & 0xFFFFFFFF
    for i in range(8):
        s1.submit(I.cdb_read10(i * 256, 256), read_len=256 * 512)
    s2 = D.session(HOSTILE, isid=isid, timeout=WAIT)
    probs = []
    try:
        s2.login()
        if not s1.conn.wait_closed(WAIT):
            probs.append("old connection not closed %.0fs after reinstatement" % WAIT)
        s2.ready()
        t = s2.read(0, 64, timeout=WAIT)
        if bytes(t.data) != D.expected[:64 * 512]:
            probs.append("reinstated session reads wrong data")
        s2.logout(timeout=WAIT)
    except I.ISCSIError as e:
        probs.append("reinstatement with tasks in flight: %s" % e)
    s1.close()
    s2.close()
    return probs


def check_unchanged(lba, blocks):
    """The blocks after a too-long Data-Out must not have been written."""
    s = D.session(HOSTILE, timeout=WAIT)
    try:
        s.login()
        s.ready()
        t = s.read(lba, blocks, timeout=WAIT)
        if bytes(t.data) != D.expected[lba * 512:(lba + blocks) * 512]:
            return ["data beyond the EDTL was written to LBA %d" % lba]
        s.logout(timeout=WAIT)
    except I.ISCSIError as e:
        return ["could not log in again to check the image: %s" % e]
    finally:
        s.close()
    return []


def case_edtl_4g_read():
    s = hostile_session(op_keys=[("MaxRecvDataSegmentLength", 65536)])
    s.ready()
    t = s.submit(I.cdb_read10(0, 8), read_len=4096, edtl=0xFFFFFFFF)
    probs = []
    try:
        s.wait_task(t, WAIT)
    except I.ConnectionClosed:
        s.close()
        return []
    except I.Timeout:
        s.close()
        return ["READ(10) of 8 blocks with EDTL 0xffffffff: no answer within %.0fs" % WAIT]
    note("READ(10) 8 blocks, EDTL 0xffffffff -> status %r reject %r U=%d O=%d resid %d, %d Data-In bytes"
         % (t.status, t.reject, t.underflow, t.overflow, t.resid, t.received))
    if t.reject is None and t.status == I.GOOD:
        if bytes(t.data) != D.expected[:4096]:
            probs.append("READ with EDTL 4 GiB-1: wrong data")
        if not t.underflow or t.resid != 0xFFFFFFFF - 4096:
            probs.append("READ of 4096 bytes with EDTL 0xffffffff: GOOD without underflow residual "
                         "%d (U=%d resid=%d; RFC 7143 11.4.5.2)" % (0xFFFFFFFF - 4096, t.underflow, t.resid))
    probs += [v for v in s.violations if "beyond the read buffer" not in v]
    s.close()
    return probs


def case_edtl_4g_write():
    s = hostile_session(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    probs = []
    t = s.submit(I.cdb_write10(9300, 8), write_data=b"\x66" * 4096, edtl=0xFFFFFFFF)
    try:
        s.wait_task(t, WAIT)
    except I.ConnectionClosed:
        s.close()
        return []
    except I.Timeout:
        s.close()
        return ["WRITE(10) of 8 blocks with EDTL 0xffffffff and no data: no answer within %.0fs "
                "(R2Ts: %r)" % (WAIT, t.r2ts)]
    note("WRITE(10) 8 blocks, EDTL 0xffffffff -> status %r reject %r U=%d resid %d R2Ts %r sense %s"
         % (t.status, t.reject, t.underflow, t.resid, t.r2ts, t.sense.hex()))
    for r2tsn, off, ln, ttt in t.r2ts:
        if off + ln > 4096:
            probs.append("R2T asks for bytes %d..%d of an 8-block WRITE (EDTL 0xffffffff)" % (off, off + ln))
    if t.reject is None and t.status in (0x08, 0x28):
        probs.append("WRITE(10) of 8 blocks with EDTL 0xffffffff answered with status 0x%02x (%s): a "
                     "transient status for a permanent condition, initiators retry it forever; expected "
                     "R2T for 4096 bytes then GOOD with U bit and residual %d (RFC 7143 11.4.5), or "
                     "CHECK CONDITION" % (t.status, "BUSY" if t.status == 8 else "TASK SET FULL",
                                           0xFFFFFFFF - 4096))
    if t.reject is None and t.status == I.GOOD and (not t.underflow or t.resid != 0xFFFFFFFF - 4096):
        probs.append("WRITE of 4096 bytes with EDTL 0xffffffff: GOOD without the underflow residual "
                     "(U=%d resid=%d)" % (t.underflow, t.resid))
    s.close()
    return probs


def case_header_digest_error():
    s = hostile_session(digests=True)
    if not s.params.header_digest:
        s.close()
        return ["HeaderDigest=CRC32C not negotiated"]
    probs = []
    bad_itt = s.next_itt()
    bhs = I.build_nop_out(bad_itt, I.RSVD_TAG, s.cmdsn, s.expstatsn, 0)
    wire = bytearray(s.conn.encode(bhs))
    wire[48] ^= 0xFF                  # corrupt the header digest
    s.conn.send_raw(bytes(wire))
    kind, p = outcome(s.conn, 1.5)
    note("NOP-Out with a bad header digest -> %s %r" % (kind, p))
    if kind == "closed":
        s.close()
        return []
    if kind == "other" and getattr(p, "opcode", None) == I.OP_NOP_IN and p.itt == bad_itt:
        probs.append("NOP-Out with a bad header digest was answered (RFC 7143 7.8: must be discarded)")
    try:
        n = s.nop(b"after-hd-error", timeout=WAIT)
        if n.opcode != I.OP_NOP_IN:
            probs.append("after a header digest error, NOP answered with %s" % n.name)
    except I.ConnectionClosed:
        pass
    except I.ISCSIError as e:
        probs.append("after a header digest error the connection hangs: %s" % e)
    s.close()
    return probs


def case_data_digest_error():
    s = hostile_session(digests=True)
    if not s.params.data_digest:
        s.close()
        return ["DataDigest=CRC32C not negotiated"]
    itt = s.next_itt()
    payload = b"bad-data-digest!"
    wire = bytearray(s.conn.encode(I.build_nop_out(itt, I.RSVD_TAG, s.cmdsn, s.expstatsn, len(payload)),
                                   payload))
    wire[-1] ^= 0xFF                  # corrupt the data digest
    s.conn.send_raw(bytes(wire))
    kind, p, probs = want_reject_or_close("NOP-Out with a bad data digest", s.conn, also=("other",))
    if kind == "other":
        probs.append("NOP-Out with a bad data digest answered with %r (RFC 7143 7.8: Reject, reason "
                     "0x02 Data (payload) Digest Error)" % p)
    elif kind == "reject" and p.reason != 0x02:
        probs.append("data digest error rejected with reason 0x%02x, expected 0x02" % p.reason)
    s.close()
    return probs


LOGINS_PER_ADDR = 16   # pristined's default max-logins-per-address


def case_many_half_logins(n=200):
    """A slowloris from one address: 200 logins that never finish.  The
    target keeps at most LOGINS_PER_ADDR of them and closes the rest at
    once; another address logs in and reads promptly meanwhile; once the
    half-open logins are gone the first address logs in again."""
    conns = []
    probs = []
    deadline = time.monotonic() + 30
    s0 = D.session(HOSTILE)
    half = login_bhs(s0, 200)[:30]
    s0.close()
    for i in range(n):
        if time.monotonic() > deadline:
            probs.append("opening %d connections took more than 30s (%d opened)" % (n, i))
            break
        try:
            c = socket.create_connection((D.host, D.port), timeout=5, source_address=("127.0.0.1", 0))
            c.sendall(half)
            conns.append(c)
        except OSError:
            conns.append(None)   # refused or reset at once: what we want past the limit
    time.sleep(1.0)
    kept = 0
    for c in conns:
        if c is None:
            continue
        c.settimeout(0.01)
        try:
            if c.recv(1) != b"":
                probs.append("a half-open login got an answer")
            else:
                c.close()
                continue
        except (socket.timeout, BlockingIOError):
            kept += 1
            continue
        except OSError:
            pass
        c.close()
    conns = [c for c in conns if c is not None and c.fileno() >= 0]
    if kept > LOGINS_PER_ADDR:
        probs.append("%d half-open logins from one address kept (limit %d)" % (kept, LOGINS_PER_ADDR))
    if kept == 0:
        probs.append("no half-open login kept at all (the limit is per address, not zero)")
    if not re.search(r"127\.0\.0\.1:\d+: connection refused: too many logins in progress from this "
                     r"address", D.log()):
        probs.append("the refusals are not logged")
    # another address is not affected
    t0 = time.monotonic()
    try:
        s = D.session(HOSTILE, timeout=WAIT, source="127.0.0.2")
        s.login()
        s.ready()
        t = s.read(0, 8, timeout=WAIT)
        if bytes(t.data) != D.expected[:4096]:
            probs.append("read with %d half-open logins around: wrong data" % kept)
        s.logout(timeout=WAIT)
        s.close()
        dt = time.monotonic() - t0
        if dt > 5:
            probs.append("login + read took %.1fs with %d half-open logins around" % (dt, kept))
    except I.ISCSIError as e:
        probs.append("login from 127.0.0.2 with %d half-open logins around failed: %s" % (kept, e))
    for c in conns:
        c.close()
    time.sleep(0.5)
    try:
        s = D.session(HOSTILE, timeout=WAIT, source="127.0.0.1")
        s.login()
        s.logout(timeout=WAIT)
        s.close()
    except I.ISCSIError as e:
        probs.append("127.0.0.1 cannot log in after its half-open logins closed: %s" % e)
    print("     (%d of %d half-open logins from one address kept by the target)" % (kept, n))
    return probs


def case_login_flood(n=100):
    probs = []
    deadline = time.monotonic() + 120
    done = 0
    for i in range(n):
        if time.monotonic() > deadline:
            probs.append("only %d of %d login/logout rounds within 120s" % (done, n))
            break
        s = D.session(HOSTILE, timeout=WAIT)
        try:
            s.login()
            lo = s.logout(timeout=WAIT)
            if lo.opcode != I.OP_LOGOUT_RESP or lo.response != 0:
                probs.append("round %d: logout answered %r" % (i, lo))
                break
            done += 1
        except I.ISCSIError as e:  # noqa
            probs.append("round %d: %s" % (i, e))
            break
        finally:
            s.close()
    note("%d login/logout rounds" % done)
    return probs


def case_garbage_stream():
    """64 KiB of random bytes as the first thing on a connection."""
    c = raw_connection()
    rnd = __import__("random").Random(7)
    try:
        c.send_raw(rnd.randbytes(65536), timeout=WAIT)
    except I.ISCSIError:
        pass
    kind, p, probs = want_reject_or_close("64 KiB of random bytes", c)
    c.close()
    return probs


def main():
    global D, H
    D = I.Daemon(mib=16, writable=True)
    if not D.available():
        print("pristined not built (%s)" % D.binary)
        return 77
    D.start()
    C = I.Checker()
    try:
        H = D.session(HEALTHY, timeout=WAIT)
        H.login(op_keys=[("MaxRecvDataSegmentLength", 65536)])
        H.ready()

        def run(name, fn, *a):
            def both():
                probs = fn(*a) or []
                return probs + health(name)
            C.case(name, both)

        for op in (0x1F, 0x3F, 0x1C):
            run("unknown opcode 0x%02x before login" % op, case_unknown_opcode_login, op)
        for op in (0x1F, 0x3F, 0x1C, 0x10):
            run("unknown/unsupported opcode 0x%02x in full feature phase" % op, case_unknown_opcode_ffp, op)
        run("DataSegmentLength beyond MaxRecvDataSegmentLength", case_dsl_beyond_mrdsl)
        run("DataSegmentLength beyond MRDSL, header only", case_dsl_beyond_mrdsl_header_only)
        run("DataSegmentLength 16 MiB-1, 1 KiB sent, close", case_dsl_huge_header_only)
        run("data segment longer than declared", case_data_longer_than_declared)
        run("data segment shorter, then close", case_data_shorter_then_close)
        run("TotalAHSLength huge (SCSI Command)", case_total_ahs_huge)
        run("bidirectional command", case_bidirectional)
        run("TotalAHSLength huge (NOP-Out)", case_total_ahs_huge_nop)
        run("CmdSN outside the window", case_cmdsn_outside_window)
        run("Login Request in full feature phase", case_login_in_ffp)
        for what, raw, ok in LOGIN_KEY_CASES:
            run("login key: " + what, case_login_key, what, raw, ok)
        run("login: non-UTF8 InitiatorName", case_non_utf8_initiator_name)
        for name in ("iqn.2024-01.test:../../../../escape", "iqn.2024-01.test:a/b",
                     "../state-escape", "iqn.2024-01.test: space"):
            run("login: InitiatorName %r" % name, case_initiator_name_path, name)
        run("100 KiB login text over C-bit PDUs", case_big_login_text)
        run("Text negotiation over 64 KiB", case_text_over_64k)
        run("Data-Out for an unknown ITT/TTT", case_data_out_unknown_itt)
        run("Data-Out with a TTT never issued", case_data_out_unknown_ttt)
        run("Data-Out beyond EDTL", case_data_out_beyond_edtl)
        run("Data-Out beyond the R2T", case_data_out_beyond_r2t)
        run("Data-Out at the wrong offset/DataSN", case_data_out_wrong_offset)
        run("three commands with the same ITT", case_duplicate_itt)
        run("SCSI Command with ITT 0xffffffff", case_reserved_itt)
        run("Logout reasons 1, 2, 0x7f", case_logout_reasons)
        run("commands after Logout", case_commands_after_logout)
        run("random CDBs", case_cdb_fuzz)
        run("TCP RST with 32 MiB of READs in flight", case_reset_with_reads_in_flight)
        run("TCP RST with a WRITE waiting for data", case_reset_with_write_waiting)
        run("reinstatement with tasks in flight", case_reinstate_with_tasks)
        run("READ with EDTL 4 GiB-1", case_edtl_4g_read)
        run("WRITE with EDTL 4 GiB-1 and no data", case_edtl_4g_write)
        run("half a BHS in login, then close", case_half_bhs_then_close, True)
        run("half a BHS in full feature phase, then close", case_half_bhs_then_close, False)
        run("half a login data segment, then close", case_half_login_data_then_close)
        run("header digest error", case_header_digest_error)
        run("data digest error", case_data_digest_error)
        run("random bytes stream", case_garbage_stream)
        run("200 half-open logins", case_many_half_logins)
        run("100 logins/logouts", case_login_flood)
        try:
            H.logout(timeout=WAIT)
        except I.ISCSIError as e:
            C.failures.append(("healthy session logout", [str(e)]))
    finally:
        problems = D.stop()
        D.cleanup()
    if problems:
        C.failures.append(("daemon shutdown", problems))
        print("FAIL daemon shutdown")
        for x in problems:
            print("     - " + x)
    return C.finish()


if __name__ == "__main__":
    sys.exit(main())
