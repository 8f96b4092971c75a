#!/usr/bin/env python3
"""Login negotiation (RFC 7143 sections 6 and 13), discovery, login status
codes, the data path under the iPXE and open-iscsi parameter sets (with and
without CRC32C digests, four MaxRecvDataSegmentLength values), session
reinstatement, a queue of 32 outstanding READs, NOP/TMF/Text/Logout.

Starts its own pristined (build/asan/pristined, or $PRISTINED) in overlay
mode (the test's writes land in its initiator's overlay).  Exit 0 pass, 77 skip (no daemon built), 1 fail."""

import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

INIT = "iqn.2024-01.test.pristine:nego"
D = None            # the Daemon
TPGT = [None]       # the TargetPortalGroupTag seen in normal sessions

NUMERIC = I.NUMERIC_KEYS


def new_session(name=INIT, **kw):
    return D.session(name, **kw)


def close_quietly(s):
    try:
        s.logout(timeout=5)
    except Exception:
        s.close()


def login_with(op_keys, name=INIT, expect_ok=True, **kw):
    s = new_session(name)
    r = s.login(op_keys=op_keys, raise_on_fail=False, **kw)
    if expect_ok and r.status_class != 0:
        s.close()
        raise AssertionError("login with %r failed: status 0x%02x/0x%02x"
                             % (op_keys, r.status_class, r.status_detail))
    return s, r


def legal_value(key, v):
    """Is v a legal value of key as a target answer/declaration?"""
    if v in ("NotUnderstood", "Irrelevant", "Reject"):
        return True
    if key in NUMERIC:
        lo, hi, _, _ = NUMERIC[key]
        try:
            n = int(v)
        except (TypeError, ValueError):
            return False
        return lo <= n <= hi and str(n) == v
    if key in I.BOOLEAN_KEYS:
        return v in ("Yes", "No")
    if key in ("HeaderDigest", "DataDigest"):
        return v in ("None", "CRC32C")
    if key == "TargetPortalGroupTag":
        try:
            return 0 <= int(v) <= 65535
        except (TypeError, ValueError):
            return False
    return v is not None


def check_answers_legal(s):
    out = []
    for k, v in s.answers_list:
        if not legal_value(k, v):
            out.append("target sent an illegal value %s=%r" % (k, v))
    return out + list(s.violations)


# ---------------------------------------------------------------- cases

def case_defaults_tpgt():
    """Plain login with no operational keys: defaults apply; TPGT returned in
    the first Login Response (RFC 7143 13.9); TSIH != 0; a read works."""
    p = []
    s, r = login_with([])
    first = dict(I.decode_keys(s.login_pdus[0].data))
    if "TargetPortalGroupTag" not in first:
        p.append("TargetPortalGroupTag not in the first Login Response (RFC 7143 13.9); "
                 "first response keys: %r" % first)
    else:
        TPGT[0] = first["TargetPortalGroupTag"]
    if s.tsih == 0:
        p.append("TSIH 0 in the final Login Response (RFC 7143 11.13.4)")
    p += check_answers_legal(s)
    s.ready()
    t = s.read(0, 64)
    if t.status != I.GOOD or bytes(t.data) != D.expected[:64 * 512]:
        p.append("read with default parameters failed: status %r" % t.status)
    if max(x[2] for x in t.datain) > 8192:
        p.append("Data-In bigger than the default MaxRecvDataSegmentLength 8192")
    p += s.violations
    close_quietly(s)
    return p


def case_numeric(key, offer, extra=()):
    p = []
    s, r = login_with(list(extra) + [(key, offer)])
    lo, hi, dflt, fn = NUMERIC[key]
    a = s.answers.get(key)
    if a is None:
        p.append("%s=%d offered, no answer (RFC 7143 6.2.2: the responder MUST answer)" % (key, offer))
    else:
        try:
            n = int(a)
        except ValueError:
            n = None
        if n is None or not lo <= n <= hi:
            p.append("%s=%d offered, answer %r is not a number in %d..%d" % (key, offer, a, lo, hi))
        elif fn == "min" and n > offer:
            p.append("%s=%d offered, answer %d > offer (result function Minimum, RFC 7143 13)"
                     % (key, offer, n))
        elif fn == "max" and n < offer:
            p.append("%s=%d offered, answer %d < offer (result function Maximum, RFC 7143 13)"
                     % (key, offer, n))
        if key == "MaxConnections" and n is not None and n != 1:
            p.append("MaxConnections=%d offered, answer %d but the target supports only 1" % (offer, n))
        if key == "ErrorRecoveryLevel" and n is not None and n != 0:
            p.append("ErrorRecoveryLevel=%d offered, answer %d but the target supports only 0" % (offer, n))
    if key == "FirstBurstLength" and s.params.first_burst > s.params.max_burst:
        p.append("negotiated FirstBurstLength %d > MaxBurstLength %d (RFC 7143 13.14)"
                 % (s.params.first_burst, s.params.max_burst))
    p += check_answers_legal(s)
    close_quietly(s)
    return p


def case_first_burst_above_max_burst():
    """FirstBurstLength=65536 with MaxBurstLength=16384 offered: 'FirstBurstLength
    MUST NOT exceed MaxBurstLength' (RFC 7143 13.14): the target must answer
    Reject, fail the login, or end with FirstBurstLength <= MaxBurstLength."""
    s, r = login_with([("InitialR2T", "No"), ("MaxBurstLength", 16384), ("FirstBurstLength", 65536)],
                      expect_ok=False)
    p = []
    if r.status_class == 0:
        if s.answers.get("FirstBurstLength") != "Reject" and s.params.first_burst > s.params.max_burst:
            p.append("accepted FirstBurstLength %d > MaxBurstLength %d (answers %r)"
                     % (s.params.first_burst, s.params.max_burst, s.answers_list))
        p += check_answers_legal(s)
        close_quietly(s)
    elif r.status_class != 2:
        p.append("login failed with class 0x%02x (expected 0x02 initiator error)" % r.status_class)
        s.close()
    return p


def case_boolean(key, offer):
    dflt, fn = I.BOOLEAN_KEYS[key]
    extra = [("ImmediateData", "Yes")] if key == "InitialR2T" else []
    s, r = login_with(extra + [(key, offer)])
    p = []
    a = s.answers.get(key)
    predetermined = (fn == "or" and offer == "Yes") or (fn == "and" and offer == "No")
    if a is None:
        if not predetermined:
            p.append("%s=%s offered, no answer (RFC 7143 6.2.2: the result depends on the "
                     "responder, it MUST answer)" % (key, offer))
    elif a not in ("Yes", "No"):
        p.append("%s=%s offered, answer %r is not Yes/No" % (key, offer, a))
    elif predetermined and a != offer:
        p.append("%s=%s offered (function %s), answer %s contradicts the fixed result %s"
                 % (key, offer, fn.upper(), a, offer))
    p += check_answers_legal(s)
    # the session must actually run with the result
    s.ready()
    t = s.read(0, 16)
    if t.status != I.GOOD or bytes(t.data) != D.expected[:16 * 512]:
        p.append("read after negotiating %s failed" % key)
    p += s.violations
    close_quietly(s)
    return p


def case_digest(key, offer, want):
    s, r = login_with([(key, offer)], expect_ok=False)
    p = []
    if want == "Reject":
        if r.status_class == 0:
            a = s.answers.get(key)
            if a != "Reject":
                p.append("%s=%s offered, answer %r (RFC 7143 6.2.1: no acceptable value -> Reject)"
                         % (key, offer, a))
            close_quietly(s)
        else:
            if r.status_class != 2:
                p.append("%s=%s: login failed with class 0x%02x, expected Reject or 0x02"
                         % (key, offer, r.status_class))
            s.close()
        return p
    if r.status_class != 0:
        s.close()
        return ["%s=%s offered, login failed 0x%02x/0x%02x" % (key, offer, r.status_class, r.status_detail)]
    a = s.answers.get(key)
    if a != want:
        p.append("%s=%s offered, answer %r, expected %r (RFC 7143 6.2.1: the responder selects the "
                 "first value of the list it supports; unknown values are ignored)" % (key, offer, a, want))
    else:
        # exercise the digest on a NOP with data and a read
        try:
            nop = s.nop(b"digest-check-" + key.encode())
            if nop.opcode != I.OP_NOP_IN:
                p.append("NOP-Out under %s=%s answered by %s" % (key, a, nop.name))
            s.ready()
            t = s.read(0, 16)
            if bytes(t.data) != D.expected[:16 * 512]:
                p.append("read under %s=%s returned wrong data" % (key, a))
        except I.DigestError as e:
            p.append("under %s=%s: %s" % (key, a, e))
    p += s.violations
    close_quietly(s)
    return p


def case_not_understood(keyname, value):
    s, r = login_with([(keyname, value)], expect_ok=False)
    p = []
    if r.status_class != 0:
        s.close()
        return ["unknown key %s: login failed 0x%02x/0x%02x; RFC 7143 6.2: answer NotUnderstood"
                % (keyname, r.status_class, r.status_detail)]
    a = s.answers.get(keyname)
    if a != "NotUnderstood":
        p.append("unknown key %s=%s answered %r, expected NotUnderstood (RFC 7143 6.2)" % (keyname, value, a))
    close_quietly(s)
    return p


def case_out_of_range(key, value):
    """An illegal value must be answered with Reject (RFC 7143 6.2.2/6.1) or the
    login failed with an initiator error; it must never be accepted."""
    s, r = login_with([(key, value)], expect_ok=False)
    p = []
    if r.status_class == 0:
        a = s.answers.get(key)
        if a != "Reject":
            p.append("%s=%s (out of range) accepted; answer %r, expected Reject or login failure 0x02"
                     % (key, value, a))
        close_quietly(s)
    else:
        if r.status_class != 2:
            p.append("%s=%s: login failed with class 0x%02x, expected 0x02" % (key, value, r.status_class))
        s.close()
    return p


def case_irrelevant_first_burst():
    """FirstBurstLength is irrelevant when InitialR2T=Yes and ImmediateData=No
    (RFC 7143 13.14): answer Irrelevant or a legal Minimum."""
    s, r = login_with([("InitialR2T", "Yes"), ("ImmediateData", "No"), ("FirstBurstLength", 4096)])
    p = []
    a = s.answers.get("FirstBurstLength")
    if a is not None and a != "Irrelevant":
        try:
            if not 512 <= int(a) <= 4096:
                p.append("FirstBurstLength=4096 answered %r" % a)
        except ValueError:
            p.append("FirstBurstLength=4096 answered %r" % a)
    p += check_answers_legal(s)
    close_quietly(s)
    return p


def case_duplicate_key():
    """The same key twice in one login: RFC 7143 6.6 'An attempt to
    renegotiate/redeclare parameters not specifically allowed MUST be
    detected by the initiator and target.  If such an attempt is detected by
    the target, the target MUST respond with Login reject (initiator error)'."""
    s, r = login_with([("MaxBurstLength", 65536), ("MaxBurstLength", 131072)], expect_ok=False)
    p = []
    if r.status_class != 2:
        p.append("MaxBurstLength sent twice in one Login Request: status 0x%02x/0x%02x, answers %r; "
                 "expected Login reject class 0x02 (RFC 7143 6.6)"
                 % (r.status_class, r.status_detail, s.answers_list))
    s.close()
    return p


def case_status(what, want, **kw):
    s = new_session(kw.pop("name", INIT))
    r = s.login(raise_on_fail=False, **kw)
    got = (r.status_class, r.status_detail)
    s.close()
    if got != want:
        return ["%s: Login Response status 0x%02x/0x%02x, expected 0x%02x/0x%02x (RFC 7143 11.13.5)"
                % ((what,) + got + want)]
    return []


def case_unsupported_version():
    s = new_session()
    r = s.login(raise_on_fail=False, vmax=0x10, vmin=0x10)
    got = (r.status_class, r.status_detail)
    s.close()
    if got != (2, 5):
        return ["Login with Version-max=Version-min=0x10: status 0x%02x/0x%02x, expected 0x02/0x05 "
                "Unsupported version (RFC 7143 11.13.5)" % got]
    return []


def case_start_operational():
    """The initiator may start in the operational stage (CSG=1)."""
    s = new_session()
    s.login(op_keys=[("MaxRecvDataSegmentLength", 16384)], start_stage=I.OPERATIONAL)
    s.ready()
    t = s.read(5, 8)
    p = [] if bytes(t.data) == D.expected[5 * 512:13 * 512] else ["read after CSG=1 login wrong"]
    p += s.violations
    close_quietly(s)
    return p


def case_skip_operational():
    """Security stage straight to full feature phase (NSG=3): all defaults."""
    s = new_session()
    s.login(skip_operational=True)
    s.ready()
    t = s.read(7, 32)
    p = [] if bytes(t.data) == D.expected[7 * 512:39 * 512] else ["read after sec->FFP login wrong"]
    if any(x[2] > 8192 for x in t.datain):
        p.append("Data-In > default MaxRecvDataSegmentLength 8192")
    p += s.violations
    close_quietly(s)
    return p


def case_discovery():
    p = []
    s = new_session("iqn.2024-01.test.pristine:disco")
    s.login(session_type="Discovery")
    pairs = s.send_targets("All")
    names = [v for k, v in pairs if k == "TargetName"]
    addrs = [v for k, v in pairs if k == "TargetAddress"]
    if D.target not in names:
        p.append("SendTargets=All does not list %s: %r" % (D.target, pairs))
    if not addrs:
        p.append("SendTargets=All gives no TargetAddress: %r" % pairs)
    for a in addrs:
        hostport, _, tag = a.rpartition(",")
        if not hostport or not tag.isdigit():
            p.append("TargetAddress %r is not 'address:port,tpgt' (RFC 7143 13.8)" % a)
            continue
        if not hostport.endswith(":%d" % D.port):
            p.append("TargetAddress %r does not carry the port %d" % (a, D.port))
        if TPGT[0] is not None and tag != TPGT[0]:
            p.append("TargetAddress TPGT %s != TargetPortalGroupTag %s of the login" % (tag, TPGT[0]))
    one = s.send_targets(D.target)
    if [v for k, v in one if k == "TargetName"] != [D.target]:
        p.append("SendTargets=%s gives %r" % (D.target, one))
    none = s.send_targets("iqn.1999-01.invalid:nothing")
    if any(k == "TargetName" for k, v in none):
        p.append("SendTargets=<unknown iqn> lists targets: %r" % none)
    p += s.violations
    close_quietly(s)
    return p


def case_discovery_irrelevant():
    """Operational keys of normal sessions in a discovery session: answered with
    Irrelevant or a legal value, and the login succeeds."""
    s = new_session("iqn.2024-01.test.pristine:disco")
    s.login(session_type="Discovery", op_keys=[("MaxBurstLength", 4096), ("InitialR2T", "No"),
                                               ("MaxRecvDataSegmentLength", 4096)])
    p = check_answers_legal(s)
    pairs = s.send_targets("All")
    if not any(k == "TargetName" for k, v in pairs):
        p.append("SendTargets after discovery login with extra keys lists nothing")
    close_quietly(s)
    return p


def case_sendtargets_big_mrdsl_small():
    """Discovery with MaxRecvDataSegmentLength=512: the answer must respect it."""
    s = new_session("iqn.2024-01.test.pristine:disco")
    s.login(session_type="Discovery", op_keys=[("MaxRecvDataSegmentLength", 512)])
    pairs = s.send_targets("All")
    p = list(s.violations)
    if not any(k == "TargetName" and v == D.target for k, v in pairs):
        p.append("SendTargets with MRDSL 512 does not list the target: %r" % pairs)
    close_quietly(s)
    return p


def case_tsih_unknown():
    return case_status("TSIH of a session that does not exist", (2, 0x0A), tsih=0x7E57)


# ---------------------------------------------------------------- data path

PROFILES = {
    # iPXE: src/net/tcp/iscsi.c proposes these operational values
    "ipxe": [("InitialR2T", "Yes"), ("ImmediateData", "No"), ("MaxBurstLength", 262144),
             ("FirstBurstLength", 65536), ("MaxOutstandingR2T", 1), ("DataPDUInOrder", "Yes"),
             ("DataSequenceInOrder", "Yes"), ("ErrorRecoveryLevel", 0), ("MaxConnections", 1),
             ("DefaultTime2Wait", 0), ("DefaultTime2Retain", 0)],
    # Linux open-iscsi defaults
    "open-iscsi": [("InitialR2T", "No"), ("ImmediateData", "Yes"), ("MaxBurstLength", 262144),
                   ("FirstBurstLength", 65536), ("MaxOutstandingR2T", 1), ("DataPDUInOrder", "Yes"),
                   ("DataSequenceInOrder", "Yes"), ("ErrorRecoveryLevel", 0), ("MaxConnections", 1),
                   ("DefaultTime2Wait", 2), ("DefaultTime2Retain", 0)],
}
# the other two InitialR2T/ImmediateData combinations, and tiny bursts
EXTRA_PROFILES = {
    "immediate+R2T": [("InitialR2T", "Yes"), ("ImmediateData", "Yes"), ("FirstBurstLength", 65536),
                      ("MaxBurstLength", 262144)],
    "unsolicited-Data-Out-only": [("InitialR2T", "No"), ("ImmediateData", "No"),
                                  ("FirstBurstLength", 65536), ("MaxBurstLength", 262144)],
    "tiny-bursts": [("InitialR2T", "No"), ("ImmediateData", "Yes"), ("FirstBurstLength", 512),
                    ("MaxBurstLength", 512)],
    "outstanding-R2T-8": [("InitialR2T", "Yes"), ("ImmediateData", "No"), ("MaxOutstandingR2T", 8),
                          ("MaxBurstLength", 16384)],
}
PROFILES.update(EXTRA_PROFILES)
WRITE_BASE = 8192        # LBA where the data path writes (4 MiB into the 16 MiB image)


def check_write_layout(s, t, n):
    """Unsolicited + R2T-solicited data must cover [0, n) exactly, in order."""
    P = s.params
    p = []
    pos = t.unsol_end
    for r2tsn, off, ln, ttt in t.r2ts:
        if P.data_sequence_in_order and off != pos:
            p.append("R2T %d at offset %d, expected %d (DataSequenceInOrder=Yes)" % (r2tsn, off, pos))
        pos = off + ln
    if pos != n and t.r2ts:
        p.append("R2Ts end at %d, write is %d bytes" % (pos, n))
    if not t.r2ts and t.unsol_end != n:
        p.append("write of %d bytes: %d sent unsolicited and no R2T" % (n, t.unsol_end))
    if P.initial_r2t and not P.immediate_data and t.unsol_end != 0:
        p.append("initiator bug: unsolicited data sent with InitialR2T=Yes/ImmediateData=No")
    return p


def case_matrix(profile, digests, mrdsl):
    keys = list(PROFILES[profile]) + [("MaxRecvDataSegmentLength", mrdsl)]
    s = new_session("iqn.2024-01.test.pristine:matrix")
    s.login(op_keys=keys, digests=digests)
    P = s.params
    p = []
    if digests and not (P.header_digest and P.data_digest):
        p.append("digests CRC32C offered, not negotiated: %r" % s.answers_list)
    for k, v in PROFILES[profile]:
        if k in I.BOOLEAN_KEYS and s.answers.get(k) not in (None, v) and \
                not (k == "InitialR2T" and v == "No") and not (k == "ImmediateData" and v == "Yes"):
            p.append("%s=%s offered, answered %s" % (k, v, s.answers.get(k)))
    if profile == "ipxe" and (not P.initial_r2t or P.immediate_data):
        p.append("iPXE profile: InitialR2T=%s ImmediateData=%s, expected Yes/No"
                 % (P.initial_r2t, P.immediate_data))
    if P.first_burst > P.max_burst and not (P.initial_r2t and not P.immediate_data):
        p.append("FirstBurstLength %d > MaxBurstLength %d" % (P.first_burst, P.max_burst))
    s.ready()
    burst_cross = 2 * P.max_burst + 4096 + 512
    sizes = [512, 4096, 65536 + 512, 1 << 20, burst_cross]
    rnd = random.Random(mrdsl * 7 + digests * 3 + len(profile))
    lba = WRITE_BASE
    for i, n in enumerate(sizes):
        data = rnd.randbytes(n)
        blocks = n // 512
        t = s.write(lba, data, cdb16=bool(i & 1), timeout=60)
        if t.status != I.GOOD or t.reject is not None:
            p.append("WRITE of %d bytes: status %r reject %r sense %s" % (n, t.status, t.reject, t.sense.hex()))
            break
        p += ["WRITE %d: %s" % (n, x) for x in check_write_layout(s, t, n)]
        r = s.read(lba, blocks, cdb16=not (i & 1), timeout=60)
        if r.status != I.GOOD:
            p.append("READ of %d bytes: status %r sense %s" % (n, r.status, r.sense.hex()))
            break
        if bytes(r.data) != data:
            bad = next(j for j in range(n) if r.data[j] != data[j])
            p.append("READ back of %d bytes differs from the written data at byte %d" % (n, bad))
        if any(x[2] > mrdsl for x in r.datain):
            p.append("Data-In of %d bytes > MaxRecvDataSegmentLength %d"
                     % (max(x[2] for x in r.datain), mrdsl))
        lba += blocks + 8
    # an unwritten region still reads the image
    r = s.read(100, 2048, timeout=60)
    if bytes(r.data) != D.expected[100 * 512:(100 + 2048) * 512]:
        p.append("READ of 1 MiB of the unwritten image returned wrong data")
    p += s.violations
    close_quietly(s)
    return p


def case_reinstatement():
    """Same InitiatorName + ISID, TSIH 0: the old session is reinstated
    (RFC 7143 6.3.5 / 4.3.1): its connection is closed, the new one works."""
    name = "iqn.2024-01.test.pristine:reinstate"
    isid = I.new_isid()
    s1 = new_session(name, isid=isid)
    s1.login()
    s1.ready()
    s1.read(0, 8)
    s2 = new_session(name, isid=isid)
    p = []
    r = s2.login(raise_on_fail=False)
    if r.status_class != 0:
        s1.close()
        s2.close()
        return ["second login with the same ISID failed 0x%02x/0x%02x" % (r.status_class, r.status_detail)]
    if not s1.conn.wait_closed(10):
        p.append("the first connection was not closed within 10s after reinstatement")
    s2.ready()
    t = s2.read(0, 64)
    if bytes(t.data) != D.expected[:64 * 512]:
        p.append("read on the reinstated session wrong")
    p += s2.violations
    s1.close()
    close_quietly(s2)
    return p


def case_queue_depth(n=32):
    s = new_session("iqn.2024-01.test.pristine:qd")
    s.login(op_keys=[("MaxRecvDataSegmentLength", 65536)])
    s.ready()
    window = (s.maxcmdsn - s.cmdsn + 1) & 0xFFFFFFFF
    p = []
    tasks = []
    for i in range(n):
        lba = (i * 97) % 30000
        blocks = 8 + (i % 4) * 32
        tasks.append((lba, blocks, s.submit(I.cdb_read10(lba, blocks), read_len=blocks * 512)))
    for lba, blocks, t in tasks:
        s.wait_task(t, 30)
        if t.status != I.GOOD:
            p.append("queued READ lba %d: status %r" % (lba, t.status))
        elif bytes(t.data) != D.expected[lba * 512:(lba + blocks) * 512]:
            p.append("queued READ lba %d: wrong data" % lba)
    print("     (initial CmdSN window %d)" % window)
    p += s.violations
    close_quietly(s)
    return p


def case_queued_writes(n=32):
    """32 WRITEs and READs in flight at once (open-iscsi profile with
    MaxOutstandingR2T=4): R2Ts of different tasks interleave."""
    keys = list(PROFILES["open-iscsi"])
    keys = [(k, v) for k, v in keys if k != "MaxOutstandingR2T"] + [("MaxOutstandingR2T", 4),
                                                                      ("MaxRecvDataSegmentLength", 32768)]
    s = new_session("iqn.2024-01.test.pristine:qw")
    s.login(op_keys=keys)
    s.ready()
    p = []
    rnd = random.Random(99)
    writes = []
    base = WRITE_BASE + 4096
    for i in range(n):
        blocks = 1 + rnd.randrange(400)
        lba = base + i * 512
        data = rnd.randbytes(blocks * 512)
        writes.append((lba, data, s.submit(I.cdb_write10(lba, blocks), write_data=data)))
    for lba, data, t in writes:
        s.wait_task(t, 60)
        if t.status != I.GOOD or t.reject is not None:
            p.append("queued WRITE at %d: status %r reject %r" % (lba, t.status, t.reject))
    reads = [(lba, data, s.submit(I.cdb_read10(lba, len(data) // 512), read_len=len(data)))
             for lba, data, _ in writes]
    for lba, data, t in reads:
        s.wait_task(t, 60)
        if t.status != I.GOOD or bytes(t.data) != data:
            p.append("READ back of queued WRITE at %d: status %r, data %s"
                     % (lba, t.status, "ok" if bytes(t.data) == data else "wrong"))
    p += s.violations
    close_quietly(s)
    return p


def case_residuals():
    """RFC 7143 11.4.5: overflow/underflow with residual counts."""
    s = new_session()
    s.login(op_keys=[("MaxRecvDataSegmentLength", 65536)])
    s.ready()
    p = []
    # READ(10) of 16 blocks, EDTL 4096: overflow, 4096 bytes delivered
    t = s.command(I.cdb_read10(0, 16), read_len=4096)
    if t.status != I.GOOD or not t.overflow or t.resid != 4096:
        p.append("READ 8 KiB with EDTL 4096: status %r O=%d U=%d resid %d, expected GOOD O=1 resid 4096"
                 % (t.status, t.overflow, t.underflow, t.resid))
    elif bytes(t.data) != D.expected[:4096]:
        p.append("READ with overflow: wrong data")
    # READ(10) of 8 blocks, EDTL 8192: underflow 4096
    t = s.command(I.cdb_read10(0, 8), read_len=8192)
    if t.status != I.GOOD or not t.underflow or t.resid != 4096:
        p.append("READ 4 KiB with EDTL 8192: status %r O=%d U=%d resid %d, expected GOOD U=1 resid 4096"
                 % (t.status, t.overflow, t.underflow, t.resid))
    elif bytes(t.data[:4096]) != D.expected[:4096] or t.received != 4096:
        p.append("READ with underflow: wrong data or %d bytes" % t.received)
    # READ of 0 blocks
    t = s.command(I.cdb_read10(0, 0))
    if t.status != I.GOOD or t.received:
        p.append("READ of 0 blocks: status %r, %d bytes" % (t.status, t.received))
    # WRITE(10) of 8 blocks with EDTL 2048: overflow (or CHECK CONDITION)
    t = s.command(I.cdb_write10(WRITE_BASE + 20000, 8), write_data=b"\x5c" * 2048)
    if t.reject is not None:
        p.append("WRITE with EDTL < CDB length rejected at the iSCSI level")
    elif t.status == I.GOOD and not (t.overflow and t.resid == 2048):
        p.append("WRITE 4 KiB with EDTL 2048: GOOD with O=%d resid %d, expected O=1 resid 2048"
                 % (t.overflow, t.resid))
    for r2tsn, off, ln, ttt in t.r2ts:
        if off + ln > 2048:
            p.append("R2T beyond EDTL 2048: offset %d length %d" % (off, ln))
    # READ CAPACITY(10) and a read past the end
    t = s.command(I.cdb_read_capacity10(), read_len=8)
    last, bs = __import__("struct").unpack(">II", bytes(t.data))
    if (last, bs) != (D.mib * 2048 - 1, 512):
        p.append("READ CAPACITY(10): last LBA %d block %d, expected %d / 512" % (last, bs, D.mib * 2048 - 1))
    t = s.command(I.cdb_read10(D.mib * 2048 - 4, 8), read_len=4096)
    if t.status != I.CHECK_CONDITION or len(t.sense) < 14 or (t.sense[2] & 0x0F) != 5 or t.sense[12] != 0x21:
        p.append("READ past the end: status %r sense %s, expected CHECK CONDITION ILLEGAL REQUEST "
                 "LBA OUT OF RANGE (0x21)" % (t.status, t.sense.hex()))
    p += s.violations
    close_quietly(s)
    return p


def case_abort_stalled_write():
    """A WRITE waiting for Data-Out (R2T outstanding) is aborted with ABORT
    TASK: Function complete, no SCSI Response for it, session goes on."""
    s = new_session()
    s.login(op_keys=[("InitialR2T", "Yes"), ("ImmediateData", "No")])
    s.ready()
    p = []
    itt = s.next_itt()
    cmdsn = s.cmdsn
    s.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 8192, cmdsn, s.expstatsn,
                                     I.cdb_write10(WRITE_BASE + 21000, 16), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    r2t = s.conn.recv_pdu(10)
    s._update_sn(r2t)
    if r2t.opcode != I.OP_R2T:
        s.close()
        return ["WRITE with InitialR2T=Yes answered with %r, expected R2T" % r2t]
    r = s.tmf(I.TMF_ABORT_TASK, ref_itt=itt, refcmdsn=cmdsn)
    if r.opcode != I.OP_TMF_RESP or r.response != 0:
        p.append("ABORT TASK of a WRITE waiting for data: %s response %r, expected 0 Function complete"
                 % (r.name, getattr(r, "response", None)))
    t = s.read(WRITE_BASE + 21000, 16)
    if bytes(t.data) != D.expected[(WRITE_BASE + 21000) * 512:(WRITE_BASE + 21016) * 512]:
        p.append("aborted WRITE changed the data")
    if ("unexpected", I.OP_SCSI_RESP) in s.responses or any(
            v.startswith("SCSI Response for unknown ITT 0x%x" % itt) for v in s.violations):
        p.append("SCSI Response sent for the aborted task")
    p += [v for v in s.violations if "unknown ITT 0x%x" % itt not in v]
    # same with LOGICAL UNIT RESET
    itt = s.next_itt()
    s.conn.send_pdu(I.build_scsi_cmd(0xA1, D.lun, itt, 8192, s.cmdsn, s.expstatsn,
                                     I.cdb_write10(WRITE_BASE + 21100, 16), 0))
    s.cmdsn = (s.cmdsn + 1) & 0xFFFFFFFF
    r2t = s.conn.recv_pdu(10)
    s._update_sn(r2t)
    r = s.tmf(I.TMF_LUN_RESET)
    if r.opcode != I.OP_TMF_RESP or r.response != 0:
        p.append("LUN RESET with a WRITE waiting for data: %s response %r" % (r.name, getattr(r, "response", None)))
    s.ready()
    t = s.read(0, 8)
    if bytes(t.data) != D.expected[:4096]:
        p.append("read after LUN RESET wrong")
    close_quietly(s)
    return p


def case_operational_two_rounds():
    """Operational stage over two exchanges: the first Login Request has T=0,
    so the target must answer with T=0 (RFC 7143 11.13.3: the target sets T=1
    only if the initiator's T bit was 1)."""
    s = new_session()
    r, text = s._login_round(I.SECURITY, I.OPERATIONAL, True,
                             I.encode_keys([("InitiatorName", INIT), ("TargetName", D.target),
                                            ("SessionType", "Normal"), ("AuthMethod", "None")]))
    p = []
    if r.status_class or not r.transit:
        s.close()
        return ["security stage: status 0x%02x T=%d" % (r.status_class, r.transit)]
    s._record_answers(text)
    r, text = s._login_round(I.OPERATIONAL, I.FULL_FEATURE, False,
                             I.encode_keys([("MaxBurstLength", 65536), ("InitialR2T", "Yes")]))
    s._record_answers(text)
    if r.status_class != 0:
        s.close()
        return ["operational round with T=0 failed 0x%02x/0x%02x" % (r.status_class, r.status_detail)]
    if r.transit:
        p.append("Login Response has T=1 although the request had T=0 (RFC 7143 11.13.3)")
    if s.answers.get("MaxBurstLength") is None:
        p.append("MaxBurstLength offered with T=0 not answered")
    s.offered.update({"MaxBurstLength": "65536", "InitialR2T": "Yes",
                      "MaxRecvDataSegmentLength": "16384"})
    r, text = s._login_round(I.OPERATIONAL, I.FULL_FEATURE, True,
                             I.encode_keys([("MaxRecvDataSegmentLength", 16384)]))
    s._record_answers(text)
    if r.status_class != 0 or not r.transit or r.nsg != I.FULL_FEATURE:
        s.close()
        return p + ["second operational round: status 0x%02x T=%d NSG=%d"
                    % (r.status_class, r.transit, r.nsg)]
    s._login_done(r)
    s.ready()
    t = s.read(0, 128)
    if bytes(t.data) != D.expected[:128 * 512]:
        p.append("read after a two-round login wrong")
    if any(x[2] > 16384 for x in t.datain):
        p.append("Data-In > MaxRecvDataSegmentLength 16384 declared in the second round")
    p += s.violations
    close_quietly(s)
    return p


def case_second_connection():
    """MaxConnections=1: a login adding a connection (same ISID, the session's
    TSIH, CID 1) must fail (RFC 7143 11.13.5: 0x02/0x06 Too many connections,
    or another initiator-error status); the session keeps working."""
    name = "iqn.2024-01.test.pristine:twoconn"
    isid = I.new_isid()
    s1 = new_session(name, isid=isid)
    s1.login()
    s1.ready()
    s2 = new_session(name, isid=isid)
    s2.cid = 1
    p = []
    try:
        r = s2.login(tsih=s1.tsih, raise_on_fail=False)
        if r.status_class != 2:
            p.append("second connection to a MaxConnections=1 session: status 0x%02x/0x%02x, expected 0x02/0x06"
                     % (r.status_class, r.status_detail))
    except I.ConnectionClosed:
        pass
    s2.close()
    t = s1.read(0, 8)
    if bytes(t.data) != D.expected[:4096]:
        p.append("first session broken after a refused second connection")
    p += s1.violations
    close_quietly(s1)
    return p


def case_text_ffp_keys():
    """Text negotiation in full feature phase: MaxRecvDataSegmentLength (Use:
    ALL, RFC 7143 13.12) may be declared again and must then be honoured; a
    leading-only key such as MaxBurstLength must not be renegotiated."""
    s = new_session()
    s.login(op_keys=[("MaxRecvDataSegmentLength", 65536)])
    s.ready()
    p = []
    pairs, last = s.text([("MaxRecvDataSegmentLength", 4096)])
    if pairs is None:
        p.append("Text MaxRecvDataSegmentLength=4096 answered with %r" % last)
    else:
        ans = dict(pairs)
        if ans.get("MaxRecvDataSegmentLength") in ("Reject", "NotUnderstood", "Irrelevant"):
            p.append("Text MaxRecvDataSegmentLength=4096 in FFP answered %r (the key is 'Use: ALL')" % ans)
        else:
            s.conn.max_recv_dsl = 4096
            s.params.max_recv_dsl = 4096
            t = s.read(0, 128)
            if bytes(t.data) != D.expected[:128 * 512]:
                p.append("read after MRDSL renegotiation wrong")
            big = [x[2] for x in t.datain if x[2] > 4096]
            if big:
                p.append("after declaring MaxRecvDataSegmentLength=4096 by Text, Data-In of %d bytes"
                         % max(big))
    s.conn.violations[:] = [v for v in s.conn.violations if "MaxRecvDataSegmentLength 4096" not in v] \
        if p else s.conn.violations
    pairs, last = s.text([("MaxBurstLength", 4096)])
    if pairs is not None:
        ans = dict(pairs)
        if ans.get("MaxBurstLength") not in ("Reject", "Irrelevant"):
            p.append("Text MaxBurstLength=4096 (leading-only, login-only) in FFP answered %r; expected Reject"
                     % ans)
    p += s.violations
    close_quietly(s)
    return p


def case_session_ops():
    """NOP ping, Text in full feature phase, TMFs, Logout."""
    s = new_session()
    s.login()
    s.ready()
    p = []
    nop = s.nop(b"x" * 1000)
    if nop.opcode != I.OP_NOP_IN:
        p.append("NOP-Out ping answered with %s" % nop.name)
    nop = s.nop(b"", immediate=False)
    if nop.opcode != I.OP_NOP_IN:
        p.append("non-immediate NOP-Out answered with %s" % nop.name)
    # NOP-Out with ITT 0xffffffff: no answer wanted (RFC 7143 11.18)
    s.conn.send_pdu(I.build_nop_out(I.RSVD_TAG, I.RSVD_TAG, s.cmdsn, s.expstatsn, 0))
    nop = s.nop(b"after-unanswered")
    if nop.opcode != I.OP_NOP_IN or nop.data != b"after-unanswered":
        p.append("NOP after an ITT=0xffffffff NOP-Out: %r" % nop)
    # an immediate SCSI command
    t = s.command(I.cdb_read10(3, 8), read_len=4096, immediate=True)
    if t.status != I.GOOD or bytes(t.data) != D.expected[3 * 512:11 * 512]:
        p.append("immediate READ: status %r" % t.status)
    pairs, last = s.text([("X-com.example.unknown", "1")])
    if pairs is None or ("X-com.example.unknown", "NotUnderstood") not in pairs:
        p.append("Text Request with an unknown key answered %r" % (pairs if pairs is not None else last.name))
    pairs = s.send_targets("All")
    if not any(k == "TargetName" and v == D.target for k, v in pairs):
        p.append("SendTargets=All in a normal session: %r" % pairs)
    r = s.tmf(I.TMF_ABORT_TASK, ref_itt=0x12345, refcmdsn=(s.cmdsn - 1) & 0xFFFFFFFF)
    if r.opcode != I.OP_TMF_RESP or r.response not in (0, 1):
        p.append("ABORT TASK of an unknown task: %s response %r (RFC 7143 11.6.1: 0 or 1)"
                 % (r.name, getattr(r, "response", None)))
    r = s.tmf(I.TMF_LUN_RESET)
    if r.opcode != I.OP_TMF_RESP or r.response != 0:
        p.append("LOGICAL UNIT RESET: %s response %r" % (r.name, getattr(r, "response", None)))
    s.ready(tries=5)
    r = s.tmf(I.TMF_ABORT_TASK_SET)
    if r.opcode != I.OP_TMF_RESP or r.response not in (0, 5):
        p.append("ABORT TASK SET: %s response %r" % (r.name, getattr(r, "response", None)))
    t = s.read(0, 8)
    if bytes(t.data) != D.expected[:8 * 512]:
        p.append("read after TMFs wrong")
    p += s.violations
    lo = s.logout()
    if lo.opcode != I.OP_LOGOUT_RESP or lo.response != 0:
        p.append("Logout: %s response %r" % (lo.name, getattr(lo, "response", None)))
    p += s.violations
    return p


def case_write_protected():
    """Without --writable, a WRITE must fail with CHECK CONDITION / DATA PROTECT."""
    d2 = I.Daemon(mib=1, writable=False)
    d2.start()
    p = []
    try:
        s = d2.session("iqn.2024-01.test.pristine:ro")
        s.login()
        s.ready()
        t = s.write(10, b"\xaa" * 4096)
        if t.status != I.CHECK_CONDITION or len(t.sense) < 3 or (t.sense[2] & 0x0F) != 0x07:
            p.append("WRITE on a read-only LUN: status %r sense %s, expected CHECK CONDITION / "
                     "DATA PROTECT" % (t.status, t.sense.hex()))
        r = s.read(10, 8)
        if bytes(r.data) != d2.expected[10 * 512:18 * 512]:
            p.append("read-only LUN changed after a WRITE")
        close_quietly(s)
    finally:
        p += d2.stop()
        d2.cleanup()
    return p


def main():
    global D
    D = I.Daemon(mib=16, writable=True)
    if not D.available():
        print("pristined not built (%s)" % D.binary)
        return 77
    D.start()
    C = I.Checker()
    try:
        C.case("defaults + TargetPortalGroupTag", case_defaults_tpgt)
        for key, offers in (("MaxBurstLength", (512, 4096, 262144, I.MAX_DSL)),
                            ("DefaultTime2Wait", (0, 2, 3600)),
                            ("DefaultTime2Retain", (0, 20, 3600)),
                            ("MaxOutstandingR2T", (1, 65535)),
                            ("ErrorRecoveryLevel", (0, 2)),
                            ("MaxConnections", (1, 4, 65535))):
            for o in offers:
                C.case("numeric %s=%d" % (key, o), case_numeric, key, o)
        for o in (512, 65536, I.MAX_DSL):
            C.case("numeric FirstBurstLength=%d (InitialR2T=No)" % o, case_numeric,
                   "FirstBurstLength", o, [("InitialR2T", "No"), ("MaxBurstLength", I.MAX_DSL)])
        C.case("FirstBurstLength > MaxBurstLength offered", case_first_burst_above_max_burst)
        for key in I.BOOLEAN_KEYS:
            for o in ("Yes", "No"):
                C.case("boolean %s=%s" % (key, o), case_boolean, key, o)
        for key in ("HeaderDigest", "DataDigest"):
            for offer, want in (("CRC32C,None", "CRC32C"), ("None,CRC32C", "None"),
                                ("CRC32C", "CRC32C"), ("None", "None"),
                                ("Bogus,CRC32C", "CRC32C"), ("Bogus", "Reject")):
                C.case("list %s=%s" % (key, offer), case_digest, key, offer, want)
        for k, v in (("X-com.example.Feature", "yes"), ("NoSuchKey", "1"), ("X#vendor", "a")):
            C.case("unknown key %s" % k, case_not_understood, k, v)
        for k, v in (("MaxBurstLength", "100"), ("MaxBurstLength", "16777216"),
                     ("FirstBurstLength", "511"), ("DefaultTime2Wait", "3601"),
                     ("ErrorRecoveryLevel", "3"), ("MaxOutstandingR2T", "0"),
                     ("MaxConnections", "0"), ("InitialR2T", "Maybe"), ("ImmediateData", "1"),
                     ("MaxBurstLength", "abc")):
            C.case("out of range %s=%s" % (k, v), case_out_of_range, k, v)
        C.case("FirstBurstLength irrelevant (InitialR2T=Yes, ImmediateData=No)", case_irrelevant_first_burst)
        C.case("duplicate key in one login", case_duplicate_key)
        C.case("normal session without TargetName -> 0x02/0x07", _no_target_name)
        C.case("unknown TargetName -> 0x02/0x03", case_status, "unknown TargetName", (2, 3),
               target_name="iqn.1999-01.invalid:no-such-target")
        C.case("no InitiatorName -> 0x02/0x07", _no_initiator_name)
        C.case("unsupported version -> 0x02/0x05", case_unsupported_version)
        C.case("unknown TSIH -> 0x02/0x0a", case_tsih_unknown)
        C.case("login starting in the operational stage", case_start_operational)
        C.case("login security stage -> full feature", case_skip_operational)
        C.case("discovery SendTargets", case_discovery)
        C.case("discovery with normal-session keys", case_discovery_irrelevant)
        C.case("discovery SendTargets with MRDSL 512", case_sendtargets_big_mrdsl_small)
        C.case("NOP / Text / TMF / Logout", case_session_ops)
        C.case("operational stage in two rounds (T=0 then T=1)", case_operational_two_rounds)
        C.case("second connection with MaxConnections=1", case_second_connection)
        C.case("Text negotiation of keys in full feature phase", case_text_ffp_keys)
        for profile in ("ipxe", "open-iscsi"):
            for digests in (False, True):
                for mrdsl in (512, 4096, 65536, I.MAX_DSL):
                    C.case("data path %s digests=%s MRDSL=%d" % (profile, digests, mrdsl),
                           case_matrix, profile, digests, mrdsl)
        for profile in EXTRA_PROFILES:
            C.case("data path %s digests=False MRDSL=8192" % profile, case_matrix, profile, False, 8192)
        C.case("32 queued WRITEs then READs", case_queued_writes)
        C.case("residuals / capacity / out of range", case_residuals)
        C.case("ABORT TASK / LUN RESET of a WRITE waiting for data", case_abort_stalled_write)
        C.case("session reinstatement (same ISID)", case_reinstatement)
        C.case("queue depth 32", case_queue_depth)
        if not D.external:
            C.case("write-protected LUN", case_write_protected)
    finally:
        problems = D.stop()
        D.cleanup()
    if problems:
        C.failures.append(("daemon shutdown", problems))
        print("FAIL daemon shutdown")
        for x in problems:
            print("     - " + x)
    return C.finish()


def _no_target_name():
    """Normal session, TargetName missing: 0x02/0x07 (RFC 7143 11.13.5 'Missing
    parameter'; 13.4: TargetName MUST be sent in the first Login Request of a
    normal session)."""
    s = I.Session(D.host, D.port, INIT, target_name=None, lun=D.lun)
    r = s.login(raise_on_fail=False)
    got = (r.status_class, r.status_detail)
    s.close()
    if got != (2, 7):
        return ["normal session without TargetName: status 0x%02x/0x%02x, expected 0x02/0x07" % got]
    return []


def _no_initiator_name():
    """No InitiatorName in the first Login Request: 0x02/0x07 (RFC 7143 13.5:
    InitiatorName MUST be sent in the first Login Request)."""
    s = new_session()
    flags = 0x80 | (I.SECURITY << 2) | I.OPERATIONAL
    text = I.encode_keys([("SessionType", "Normal"), ("TargetName", D.target), ("AuthMethod", "None")])
    s._login_itt = s.next_itt()
    bhs = I.build_login(flags, s.isid, 0, s._login_itt, 0, s.cmdsn, 0, len(text))
    s.conn.send_pdu(bhs, text)
    try:
        r = s.conn.recv_pdu(10)
    except I.ConnectionClosed:
        s.close()
        return ["no InitiatorName: connection closed without a Login Response"]
    s.close()
    got = (r.status_class, r.status_detail) if r.opcode == I.OP_LOGIN_RESP else None
    if got != (2, 7):
        return ["no InitiatorName: %s status %r, expected 0x02/0x07" % (r.name, got)]
    return []


if __name__ == "__main__":
    sys.exit(main())
