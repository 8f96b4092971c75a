#!/usr/bin/env python3
"""A small iSCSI initiator (RFC 7143) for protocol tests of pristined.

Python 3 standard library only.  Every wait is bounded by a deadline.

Layers:
  crc32c()                 table-driven CRC32C (Castagnoli), our own code,
                           used to check the target's digests independently
  build_*() / decode_bhs() PDU encoding/decoding with explicit big-endian
                           struct formats (48-byte BHS, AHS, padded data)
  Connection               one TCP connection: send/recv whole PDUs, digests
  Session                  login (security + operational stage, C-bit
                           continuation both ways), SendTargets, SCSI commands
                           (immediate / unsolicited / R2T-solicited Data-Out,
                           Data-In reassembly, phase-collapsed status,
                           residuals), NOP, TMF, Text, Logout, CmdSN/StatSN
                           bookkeeping.  Protocol violations seen from the
                           target are collected in Session.violations.
  Daemon                   starts/stops build/asan/pristined for a test.
"""

import base64
import hashlib
import os
import random
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

# --------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78), init ~0, final xor ~0

def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            if c & 1:
                c = (c >> 1) ^ 0x82F63B78
            else:
                c >>= 1
        table.append(c)
    return tuple(table)


_CRC_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC32C of bytes-like data; crc continues a previous result."""
    c = crc ^ 0xFFFFFFFF
    t = _CRC_TABLE
    for b in bytes(data):
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def digest_bytes(data):
    """The 4 digest bytes as they appear on the wire (little-endian)."""
    return struct.pack("<I", crc32c(data))


assert crc32c(b"123456789") == 0xE3069283
assert crc32c(bytes(32)) == 0x8A9136AA   # RFC 3720 B.4 test vector

# --------------------------------------------------------------------------
# Opcodes and constants

OP_NOP_OUT = 0x00
OP_SCSI_CMD = 0x01
OP_TMF_REQ = 0x02
OP_LOGIN_REQ = 0x03
OP_TEXT_REQ = 0x04
OP_DATA_OUT = 0x05
OP_LOGOUT_REQ = 0x06
OP_SNACK = 0x10

OP_NOP_IN = 0x20
OP_SCSI_RESP = 0x21
OP_TMF_RESP = 0x22
OP_LOGIN_RESP = 0x23
OP_TEXT_RESP = 0x24
OP_DATA_IN = 0x25
OP_LOGOUT_RESP = 0x26
OP_R2T = 0x31
OP_ASYNC = 0x32
OP_REJECT = 0x3F

OPCODE_NAMES = {
    0x00: "NOP-Out", 0x01: "SCSI-Command", 0x02: "TMF-Request", 0x03: "Login-Request",
    0x04: "Text-Request", 0x05: "Data-Out", 0x06: "Logout-Request", 0x10: "SNACK",
    0x20: "NOP-In", 0x21: "SCSI-Response", 0x22: "TMF-Response", 0x23: "Login-Response",
    0x24: "Text-Response", 0x25: "Data-In", 0x26: "Logout-Response", 0x31: "R2T",
    0x32: "Async-Message", 0x3F: "Reject",
}

IMMEDIATE = 0x40
RSVD_TAG = 0xFFFFFFFF

# Login stages
SECURITY = 0
OPERATIONAL = 1
FULL_FEATURE = 3

# TMF functions
TMF_ABORT_TASK = 1
TMF_ABORT_TASK_SET = 2
TMF_CLEAR_ACA = 3
TMF_CLEAR_TASK_SET = 4
TMF_LUN_RESET = 5
TMF_TARGET_WARM_RESET = 6
TMF_TARGET_COLD_RESET = 7
TMF_TASK_REASSIGN = 8

# SCSI status
GOOD = 0x00
CHECK_CONDITION = 0x02

MAX_DSL = (1 << 24) - 1


class ISCSIError(Exception):
    pass


class ConnectionClosed(ISCSIError):
    pass


class Timeout(ISCSIError):
    pass


class DigestError(ISCSIError):
    pass


class LoginFailed(ISCSIError):
    def __init__(self, status_class, status_detail, msg=""):
        super().__init__("login failed: status 0x%02x/0x%02x %s" % (status_class, status_detail, msg))
        self.status_class = status_class
        self.status_detail = status_detail


def sn_lt(a, b):
    """Serial number arithmetic (RFC 1982, 32 bits): a < b."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


def sn_le(a, b):
    return a == b or sn_lt(a, b)


def lun_bytes(lun):
    """8-byte LUN field, single-level peripheral/flat addressing."""
    if lun < 256:
        return struct.pack(">BB6x", 0, lun)
    if lun < 16384:
        return struct.pack(">H6x", 0x4000 | lun)
    raise ValueError("LUN too large")


def pad4(n):
    return (-n) & 3


def dsl_bytes(n):
    if n < 0 or n > MAX_DSL:
        raise ValueError("data segment length out of range")
    return struct.pack(">I", n)[1:]


# --------------------------------------------------------------------------
# Text keys

def encode_keys(keys):
    """keys: list of (key, value) pairs, a dict, or raw bytes (sent as is)."""
    if keys is None:
        return b""
    if isinstance(keys, (bytes, bytearray)):
        return bytes(keys)
    if isinstance(keys, dict):
        keys = list(keys.items())
    out = bytearray()
    for k, v in keys:
        kk = k if isinstance(k, bytes) else str(k).encode()
        vv = v if isinstance(v, bytes) else str(v).encode()
        out += kk + b"=" + vv + b"\0"
    return bytes(out)


def decode_keys(data):
    """Returns a list of (key, value) str pairs; malformed entries have value None."""
    out = []
    for item in bytes(data).split(b"\0"):
        if not item:
            continue
        k, sep, v = item.partition(b"=")
        ks = k.decode("utf-8", "replace")
        out.append((ks, v.decode("utf-8", "replace") if sep else None))
    return out


# --------------------------------------------------------------------------
# PDU building (initiator -> target).  Each returns the 48-byte BHS.

_LOGIN_FMT = ">BBBBB3s6sHIHHII16x"          # 48 bytes
_SCSI_CMD_FMT = ">BBHB3s8sIIII16s"          # 48 bytes
_DATA_OUT_FMT = ">BBHB3s8sII4xI4xII4x"      # 48 bytes
_NOP_TEXT_FMT = ">BBHB3s8sIIII16x"          # 48 bytes (NOP-Out, Text Request)
_TMF_FMT = ">BBHB3s8sIIIIII8x"              # 48 bytes
_LOGOUT_FMT = ">BBHB3s8xIH2xII16x"          # 48 bytes

for _f in (_LOGIN_FMT, _SCSI_CMD_FMT, _DATA_OUT_FMT, _NOP_TEXT_FMT, _TMF_FMT, _LOGOUT_FMT):
    assert struct.calcsize(_f) == 48, _f


def build_login(flags, isid, tsih, itt, cid, cmdsn, expstatsn, dlen, vmax=0, vmin=0, ahslen=0):
    return struct.pack(_LOGIN_FMT, IMMEDIATE | OP_LOGIN_REQ, flags, vmax, vmin, ahslen,
                       dsl_bytes(dlen), isid, tsih, itt, cid, 0, cmdsn, expstatsn)


def build_scsi_cmd(flags, lun, itt, edtl, cmdsn, expstatsn, cdb, dlen, immediate=False, ahslen=0):
    cdb = bytes(cdb)
    if len(cdb) > 16:
        raise ValueError("CDB longer than 16 bytes needs an AHS")
    return struct.pack(_SCSI_CMD_FMT, (IMMEDIATE if immediate else 0) | OP_SCSI_CMD, flags, 0,
                       ahslen, dsl_bytes(dlen), lun_bytes(lun), itt, edtl, cmdsn, expstatsn,
                       cdb.ljust(16, b"\0"))


def build_data_out(final, lun, itt, ttt, expstatsn, datasn, offset, dlen):
    return struct.pack(_DATA_OUT_FMT, OP_DATA_OUT, 0x80 if final else 0, 0, 0, dsl_bytes(dlen),
                       lun_bytes(lun), itt, ttt, expstatsn, datasn, offset)


def build_nop_out(itt, ttt, cmdsn, expstatsn, dlen, lun=0, immediate=True):
    return struct.pack(_NOP_TEXT_FMT, (IMMEDIATE if immediate else 0) | OP_NOP_OUT, 0x80, 0, 0,
                       dsl_bytes(dlen), lun_bytes(lun), itt, ttt, cmdsn, expstatsn)


def build_text(final, cont, itt, ttt, cmdsn, expstatsn, dlen, immediate=True):
    flags = (0x80 if final else 0) | (0x40 if cont else 0)
    return struct.pack(_NOP_TEXT_FMT, (IMMEDIATE if immediate else 0) | OP_TEXT_REQ, flags, 0, 0,
                       dsl_bytes(dlen), bytes(8), itt, ttt, cmdsn, expstatsn)


def build_tmf(function, lun, itt, rtt, cmdsn, expstatsn, refcmdsn=0, expdatasn=0, immediate=True):
    return struct.pack(_TMF_FMT, (IMMEDIATE if immediate else 0) | OP_TMF_REQ, 0x80 | function, 0,
                       0, dsl_bytes(0), lun_bytes(lun), itt, rtt, cmdsn, expstatsn, refcmdsn,
                       expdatasn)


def build_logout(reason, itt, cid, cmdsn, expstatsn, immediate=True):
    return struct.pack(_LOGOUT_FMT, (IMMEDIATE if immediate else 0) | OP_LOGOUT_REQ,
                       0x80 | reason, 0, 0, dsl_bytes(0), itt, cid, cmdsn, expstatsn)


# --------------------------------------------------------------------------
# PDU decoding (target -> initiator)

class PDU:
    """A received PDU.  Common fields: opcode, immediate, flags, ahslen, dsl,
    lun (8 raw bytes), itt; opcode-specific fields are set by decode_bhs."""

    def __init__(self, bhs, ahs=b"", data=b""):
        self.bhs = bytes(bhs)
        self.ahs = bytes(ahs)
        self.data = bytes(data)

    @property
    def name(self):
        return OPCODE_NAMES.get(self.opcode, "opcode-0x%02x" % self.opcode)

    def __repr__(self):
        return "<%s itt=0x%08x flags=0x%02x dsl=%d>" % (self.name, self.itt, self.flags, self.dsl)


def decode_bhs(bhs):
    if len(bhs) != 48:
        raise ValueError("BHS must be 48 bytes")
    p = PDU(bhs)
    b0, p.flags, p.b2, p.b3, ahs_words = struct.unpack_from(">BBBBB", bhs, 0)
    p.opcode = b0 & 0x3F
    p.immediate = bool(b0 & IMMEDIATE)
    p.ahslen = ahs_words * 4
    p.dsl = struct.unpack(">I", b"\0" + bhs[5:8])[0]
    p.lun = bhs[8:16]
    p.itt, = struct.unpack_from(">I", bhs, 16)
    p.final = bool(p.flags & 0x80)
    op = p.opcode
    if op in (OP_NOP_IN, OP_TEXT_RESP, OP_R2T, OP_DATA_IN, OP_SCSI_RESP, OP_TMF_RESP,
              OP_LOGOUT_RESP, OP_ASYNC, OP_REJECT, OP_LOGIN_RESP):
        p.statsn, p.expcmdsn, p.maxcmdsn = struct.unpack_from(">III", bhs, 24)
    if op == OP_NOP_IN or op == OP_TEXT_RESP:
        p.ttt, = struct.unpack_from(">I", bhs, 20)
        p.cont = bool(p.flags & 0x40)
    elif op == OP_SCSI_RESP:
        p.response, p.status = p.b2, p.b3
        p.snack_tag, = struct.unpack_from(">I", bhs, 20)
        p.expdatasn, p.bidi_resid, p.resid = struct.unpack_from(">III", bhs, 36)
        p.overflow = bool(p.flags & 0x04)
        p.underflow = bool(p.flags & 0x02)
        p.bidi_overflow = bool(p.flags & 0x10)
        p.bidi_underflow = bool(p.flags & 0x08)
    elif op == OP_TMF_RESP:
        p.response = p.b2
    elif op == OP_LOGIN_RESP:
        p.transit = bool(p.flags & 0x80)
        p.cont = bool(p.flags & 0x40)
        p.csg = (p.flags >> 2) & 3
        p.nsg = p.flags & 3
        p.version_max, p.version_active = p.b2, p.b3
        p.isid = bhs[8:14]
        p.tsih, = struct.unpack_from(">H", bhs, 14)
        p.status_class, p.status_detail = bhs[36], bhs[37]
    elif op == OP_DATA_IN:
        p.ack = bool(p.flags & 0x40)
        p.overflow = bool(p.flags & 0x04)
        p.underflow = bool(p.flags & 0x02)
        p.has_status = bool(p.flags & 0x01)
        p.status = p.b3
        p.ttt, = struct.unpack_from(">I", bhs, 20)
        p.datasn, p.offset, p.resid = struct.unpack_from(">III", bhs, 36)
    elif op == OP_LOGOUT_RESP:
        p.response = p.b2
        p.time2wait, p.time2retain = struct.unpack_from(">HH", bhs, 40)
    elif op == OP_R2T:
        p.ttt, = struct.unpack_from(">I", bhs, 20)
        p.r2tsn, p.offset, p.ddtl = struct.unpack_from(">III", bhs, 36)
    elif op == OP_ASYNC:
        p.async_event, p.async_vcode = bhs[36], bhs[37]
        p.param1, p.param2, p.param3 = struct.unpack_from(">HHH", bhs, 38)
    elif op == OP_REJECT:
        p.reason = p.b2
        p.datasn, = struct.unpack_from(">I", bhs, 36)
    return p


# --------------------------------------------------------------------------
# Connection: whole PDUs over one TCP socket

class Connection:
    def __init__(self, host, port, timeout=10.0, source=None):
        self.host, self.port = host, port
        self.default_timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.header_digest = False
        self.data_digest = False
        self.max_recv_dsl = 8192      # what we declared (checked on receive)
        self.closed = False
        self.violations = []
        self.rx_pdus = 0

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass

    def send_raw(self, data, timeout=None):
        self.sock.settimeout(timeout or self.default_timeout)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise Timeout("send timed out")
        except (BrokenPipeError, ConnectionResetError) as e:
            raise ConnectionClosed("send: %s" % e)

    def encode(self, bhs, data=b"", ahs=b"", hd=None, dd=None):
        hd = self.header_digest if hd is None else hd
        dd = self.data_digest if dd is None else dd
        out = bytearray(bhs)
        out += ahs
        if hd:
            out += digest_bytes(out)
        if data:
            padded = bytes(data) + bytes(pad4(len(data)))
            out += padded
            if dd:
                out += digest_bytes(padded)
        return bytes(out)

    def send_pdu(self, bhs, data=b"", ahs=b"", timeout=None):
        self.send_raw(self.encode(bhs, data, ahs), timeout)

    def _recv_exact(self, n, deadline):
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out waiting for %d bytes (got %d)" % (n, len(buf)))
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            except socket.timeout:
                raise Timeout("timed out waiting for %d bytes (got %d)" % (n, len(buf)))
            except (ConnectionResetError, ConnectionAbortedError) as e:
                raise ConnectionClosed("recv: %s" % e)
            if not chunk:
                raise ConnectionClosed("connection closed by peer (after %d of %d bytes)"
                                       % (len(buf), n))
            buf += chunk
        return bytes(buf)

    def recv_pdu(self, timeout=None):
        deadline = time.monotonic() + (self.default_timeout if timeout is None else timeout)
        bhs = self._recv_exact(48, deadline)
        p = decode_bhs(bhs)
        ahs = self._recv_exact(p.ahslen, deadline) if p.ahslen else b""
        if self.header_digest:
            dig = self._recv_exact(4, deadline)
            if dig != digest_bytes(bhs + ahs):
                raise DigestError("bad header digest on %s: got %s want %s"
                                  % (p.name, dig.hex(), digest_bytes(bhs + ahs).hex()))
        if p.dsl > self.max_recv_dsl:
            self.violations.append("%s with DataSegmentLength %d > declared MaxRecvDataSegmentLength %d"
                                   % (p.name, p.dsl, self.max_recv_dsl))
        data = b""
        if p.dsl:
            padded = self._recv_exact(p.dsl + pad4(p.dsl), deadline)
            if self.data_digest:
                dig = self._recv_exact(4, deadline)
                if dig != digest_bytes(padded):
                    raise DigestError("bad data digest on %s: got %s want %s"
                                      % (p.name, dig.hex(), digest_bytes(padded).hex()))
            data = padded[:p.dsl]
        p.ahs = ahs
        p.data = data
        self.rx_pdus += 1
        return p

    def wait_closed(self, timeout=5.0):
        """True if the peer closes the connection within timeout (PDUs are drained)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except OSError:
                return True
            if not chunk:
                return True


# --------------------------------------------------------------------------
# Negotiation helpers

NUMERIC_KEYS = {
    # key: (min, max, default, function)
    "MaxConnections": (1, 65535, 1, "min"),
    "MaxRecvDataSegmentLength": (512, MAX_DSL, 8192, "declare"),
    "MaxBurstLength": (512, MAX_DSL, 262144, "min"),
    "FirstBurstLength": (512, MAX_DSL, 65536, "min"),
    "DefaultTime2Wait": (0, 3600, 2, "max"),
    "DefaultTime2Retain": (0, 3600, 20, "min"),
    "MaxOutstandingR2T": (1, 65535, 1, "min"),
    "ErrorRecoveryLevel": (0, 2, 0, "min"),
}
BOOLEAN_KEYS = {
    # key: (default, function)
    "InitialR2T": (True, "or"),
    "ImmediateData": (True, "and"),
    "DataPDUInOrder": (True, "or"),
    "DataSequenceInOrder": (True, "or"),
}


def yes(v):
    return v == "Yes"


class Params:
    """Operational parameters in effect for a session (defaults per RFC 7143 s13)."""

    def __init__(self):
        self.header_digest = False
        self.data_digest = False
        self.max_recv_dsl = 8192         # ours (target must not send more)
        self.target_max_recv_dsl = 8192  # the target's (we must not send more)
        self.max_burst = 262144
        self.first_burst = 65536
        self.initial_r2t = True
        self.immediate_data = True
        self.max_outstanding_r2t = 1
        self.data_pdu_in_order = True
        self.data_sequence_in_order = True
        self.error_recovery_level = 0
        self.default_time2wait = 2
        self.default_time2retain = 20

    def __repr__(self):
        return "Params(%s)" % ", ".join("%s=%r" % kv for kv in sorted(self.__dict__.items()))


# --------------------------------------------------------------------------
# SCSI tasks

class Task:
    def __init__(self, itt, cdb, lun, read_len, write_data, edtl):
        self.itt = itt
        self.cdb = bytes(cdb)
        self.lun = lun
        self.read_len = read_len
        self.write_data = bytes(write_data) if write_data is not None else None
        self.edtl = edtl
        self.data = bytearray(read_len)
        self.received = 0
        self.max_offset = 0
        self.datain = []            # (datasn, offset, length, F, S)
        self.r2ts = []              # (r2tsn, offset, ddtl, ttt)
        self.next_datasn = 0
        self.next_r2tsn = 0
        self.next_offset = 0
        self.seq_bytes = 0
        self.done = False
        self.status = None
        self.response = None
        self.sense = b""
        self.overflow = self.underflow = False
        self.resid = 0
        self.reject = None
        self.phase_collapsed = False
        self.cmdsn = None
        self.resp_pdu = None
        self.immediate_len = 0
        self.unsol_end = 0

    def __repr__(self):
        return "<Task itt=0x%x cdb=%s status=%r>" % (self.itt, self.cdb[:1].hex(), self.status)


def cdb_read10(lba, blocks):
    return struct.pack(">BBIBHB", 0x28, 0, lba, 0, blocks, 0)


def cdb_write10(lba, blocks):
    return struct.pack(">BBIBHB", 0x2A, 0, lba, 0, blocks, 0)


def cdb_read16(lba, blocks):
    return struct.pack(">BBQIBB", 0x88, 0, lba, blocks, 0, 0)


def cdb_write16(lba, blocks):
    return struct.pack(">BBQIBB", 0x8A, 0, lba, blocks, 0, 0)


def cdb_read_capacity10():
    return bytes([0x25]) + bytes(9)


def cdb_test_unit_ready():
    return bytes(6)


def cdb_inquiry(alloc=96):
    return struct.pack(">BBBHB", 0x12, 0, 0, alloc, 0)


def cdb_report_luns(alloc=4096):
    return struct.pack(">BBB3xIBB", 0xA0, 0, 0, alloc, 0, 0)


# --------------------------------------------------------------------------
# Session (one connection; MaxConnections=1)

_isid_counter = [random.randrange(1 << 16)]


def new_isid():
    """A random-qualifier ISID (type 0x80 'random'), different on each call."""
    _isid_counter[0] = (_isid_counter[0] + 1) & 0xFFFF
    return struct.pack(">BBHH", 0x80, random.randrange(256), random.randrange(1 << 16),
                       _isid_counter[0])


class Session:
    def __init__(self, host, port, initiator_name="iqn.2024-01.test.pristine:init",
                 target_name=None, lun=0, isid=None, timeout=10.0, source=None):
        self.host, self.port = host, port
        self.initiator_name = initiator_name
        self.target_name = target_name
        self.lun = lun
        self.isid = isid if isid is not None else new_isid()
        self.timeout = timeout
        self.conn = Connection(host, port, timeout, source=source)
        self.cid = 0
        self.tsih = 0
        self.itt = random.randrange(1, 1 << 20)
        self.cmdsn = random.randrange(1 << 32)
        self.expstatsn = 0
        self.expcmdsn = self.cmdsn
        self.maxcmdsn = self.cmdsn
        self.params = Params()
        self.offered = {}           # our operational keys (last value sent)
        self.answers = {}           # the target's keys (last value received)
        self.answers_list = []      # every key the target sent, in order
        self.login_pdus = []        # every Login Response PDU
        self.full_feature = False
        self.tasks = {}
        self.responses = {}         # ITT -> PDU for NOP/TMF/Text/Logout answers
        self.rejects = []
        self.async_msgs = []
        self.violations = self.conn.violations
        self.statsn_seen = None

    # ---- basics
    def close(self):
        self.conn.close()

    def next_itt(self):
        self.itt = (self.itt + 1) & 0xFFFFFFFF
        if self.itt == RSVD_TAG:
            self.itt = 1
        return self.itt

    def violation(self, msg):
        self.violations.append(msg)

    def _update_sn(self, p):
        if not hasattr(p, "expcmdsn"):
            return
        # a PDU carrying status advances ExpStatSN
        carries_status = p.opcode in (OP_SCSI_RESP, OP_TMF_RESP, OP_TEXT_RESP, OP_LOGOUT_RESP,
                                      OP_REJECT, OP_ASYNC, OP_LOGIN_RESP) \
            or (p.opcode == OP_DATA_IN and p.has_status) \
            or (p.opcode == OP_NOP_IN and p.itt != RSVD_TAG)
        if carries_status and p.opcode != OP_LOGIN_RESP and self.full_feature:
            if p.statsn != self.expstatsn:
                self.violation("%s StatSN %d, expected %d" % (p.name, p.statsn, self.expstatsn))
            if sn_le(self.expstatsn, p.statsn):
                self.expstatsn = (p.statsn + 1) & 0xFFFFFFFF
        elif carries_status:
            self.expstatsn = (p.statsn + 1) & 0xFFFFFFFF
        if p.opcode == OP_LOGIN_RESP and p.status_class != 0:
            return
        # MaxCmdSN - ExpCmdSN must be >= -1 (RFC 7143 4.2.2.1)
        if not sn_le((p.expcmdsn - 1) & 0xFFFFFFFF, p.maxcmdsn):
            self.violation("%s: MaxCmdSN %d < ExpCmdSN-1 %d" % (p.name, p.maxcmdsn, p.expcmdsn - 1))
            return
        if sn_lt(self.expcmdsn, p.expcmdsn) or not self.full_feature:
            self.expcmdsn = p.expcmdsn
        if sn_lt(self.maxcmdsn, p.maxcmdsn) or not self.full_feature:
            self.maxcmdsn = p.maxcmdsn

    # ---- CHAP (RFC 7143 12.1.3)
    CHAP_HASHES = {5: hashlib.md5, 7: hashlib.sha256}

    @staticmethod
    def chap_response(alg, ident, secret, challenge):
        """H(id || secret || challenge) for CHAP_A alg."""
        return Session.CHAP_HASHES[alg](bytes([ident]) + secret.encode() + challenge).digest()

    @staticmethod
    def chap_decode(v):
        if v[:2] in ("0x", "0X"):
            h = v[2:]
            return bytes.fromhex(("0" + h) if len(h) % 2 else h)
        if v[:2] in ("0b", "0B"):
            return base64.b64decode(v[2:], validate=True)
        raise ISCSIError("CHAP value %r is not 0x/0b encoded" % v)

    def _chap(self, base, chap, nsg, timeout):
        """The security stage with CHAP.  chap: dict with user, secret;
        optional algs ("5", "7,5"...), methods (AuthMethod list, "CHAP"),
        mutual (user, secret): challenge the target and check its answer;
        mutual_challenge (bytes, None = 16 random); b64 (encode our values
        in base64); tamper(keys, info) -> keys: change the CHAP_N/CHAP_R
        (/CHAP_I/CHAP_C) keys before they go out (info: alg, id, challenge).
        Records self.chap_info.  Returns the last Login Response."""
        info = self.chap_info = {}
        r, text = self._login_round(SECURITY, nsg, True,
                                    encode_keys(base + [("AuthMethod", chap.get("methods", "CHAP"))]), timeout)
        a = dict(self._record_answers(text))
        if r.status_class != 0:
            return r
        if a.get("AuthMethod") != "CHAP" or r.transit:
            raise ISCSIError("target answered AuthMethod=%s transit=%s" % (a.get("AuthMethod"), r.transit))
        r, text = self._login_round(SECURITY, nsg, True, encode_keys([("CHAP_A", chap.get("algs", "5"))]), timeout)
        a = dict(self._record_answers(text))
        if r.status_class != 0:
            return r
        alg, ident = int(a["CHAP_A"]), int(a["CHAP_I"], 0)
        challenge = self.chap_decode(a["CHAP_C"])
        info.update(alg=alg, id=ident, challenge=challenge)
        resp = self.chap_response(alg, ident, chap["secret"], challenge)
        enc = (lambda b: "0b" + base64.b64encode(b).decode()) if chap.get("b64") else (lambda b: "0x" + b.hex())
        keys = [("CHAP_N", chap["user"]), ("CHAP_R", enc(resp))]
        mutual = chap.get("mutual")
        if mutual:
            mc = chap.get("mutual_challenge") or os.urandom(16)
            mid = random.randrange(256)
            info.update(mutual_id=mid, mutual_challenge=mc)
            keys += [("CHAP_I", str(mid)), ("CHAP_C", enc(mc))]
        if chap.get("tamper"):
            keys = chap["tamper"](keys, info)
        info["sent"] = keys
        r, text = self._login_round(SECURITY, nsg, True, encode_keys(keys), timeout)
        a = dict(self._record_answers(text))
        if r.status_class != 0:
            return r
        if mutual:
            want = self.chap_response(alg, info["mutual_id"], mutual[1], info["mutual_challenge"])
            got = self.chap_decode(a.get("CHAP_R", "0x"))
            info["mutual_ok"] = a.get("CHAP_N") == mutual[0] and got == want
            if not info["mutual_ok"]:
                raise ISCSIError("target failed mutual CHAP (CHAP_N=%r)" % a.get("CHAP_N"))
        if not r.transit:
            raise ISCSIError("target did not leave the security stage after CHAP")
        return r

    # ---- login
    def _login_round(self, csg, nsg, transit, text, timeout=None, vmax=0, vmin=0):
        """One login request/response exchange, splitting our text over C-bit
        PDUs (each at most 8192 bytes, the login-phase default) and collecting a
        C-bit continued answer.  Returns (last response PDU, answer text)."""
        chunk = 8192
        parts = [text[i:i + chunk] for i in range(0, len(text), chunk)] or [b""]
        if not hasattr(self, "_login_itt"):
            self._login_itt = self.next_itt()
        itt = self._login_itt
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            flags = (csg << 2)
            if last and transit:
                flags |= 0x80 | nsg
            if not last:
                flags |= 0x40
            bhs = build_login(flags, self.isid, self.tsih, itt, self.cid, self.cmdsn,
                              self.expstatsn, len(part), vmax, vmin)
            self.conn.send_raw(self.conn.encode(bhs, part, hd=False, dd=False))
            if not last:
                r = self._recv_login(timeout)
                if r.status_class != 0:
                    return r, r.data
                if r.dsl != 0:
                    self.violation("Login Response to a C=1 Login Request carries %d data bytes "
                                   "(RFC 7143 11.12.2: must be empty)" % r.dsl)
        answer = bytearray()
        for _ in range(256):
            r = self._recv_login(timeout)
            answer += r.data
            if r.status_class != 0 or not r.cont:
                return r, bytes(answer)
            if r.transit:
                self.violation("Login Response with both T and C bits set")
            bhs = build_login(csg << 2, self.isid, self.tsih, itt, self.cid, self.cmdsn,
                              self.expstatsn, 0, vmax, vmin)
            self.conn.send_raw(self.conn.encode(bhs, b"", hd=False, dd=False))
        raise ISCSIError("login response continuation did not end")

    def _recv_login(self, timeout=None):
        p = self.conn.recv_pdu(timeout)
        if p.opcode != OP_LOGIN_RESP:
            if p.opcode == OP_REJECT:
                self.rejects.append(p)
            raise ISCSIError("expected Login Response, got %s" % p.name)
        self.login_pdus.append(p)
        self._update_sn(p)
        if p.status_class == 0:
            if p.itt != self._login_itt:
                self.violation("Login Response ITT 0x%x != request ITT 0x%x" % (p.itt, self._login_itt))
            if p.isid != self.isid:
                self.violation("Login Response ISID %s != request ISID %s" % (p.isid.hex(), self.isid.hex()))
            if p.version_active != 0:
                self.violation("Login Response Version-active %d" % p.version_active)
        return p

    def _record_answers(self, text):
        pairs = decode_keys(text)
        for k, v in pairs:
            self.answers[k] = v
            self.answers_list.append((k, v))
        return pairs

    def login(self, op_keys=None, sec_keys=None, session_type="Normal", target_name=None,
              tsih=0, start_stage=SECURITY, skip_operational=False, digests=None,
              raise_on_fail=True, timeout=None, initiator_name=None, max_rounds=8,
              vmax=0, vmin=0, chap=None):
        """Log in.  op_keys: list of (key, value) (or raw bytes) for the
        operational stage; sec_keys: extra keys for the security stage.
        digests=True adds HeaderDigest=CRC32C,DataDigest=CRC32C (False: None).
        chap: log in with CHAP (see _chap).
        Returns the final Login Response PDU (status in .status_class)."""
        self.tsih = tsih
        name = initiator_name or self.initiator_name
        tname = target_name if target_name is not None else self.target_name
        base = [("InitiatorName", name)]
        if session_type is not None:
            base.append(("SessionType", session_type))
        if tname is not None and session_type != "Discovery":
            base.append(("TargetName", tname))
        op = list(op_keys.items()) if isinstance(op_keys, dict) else (op_keys or [])
        if digests is not None and not isinstance(op, (bytes, bytearray)):
            v = "CRC32C" if digests else "None"
            op = [("HeaderDigest", v), ("DataDigest", v)] + list(op)
        if isinstance(op, list):
            for k, v in op:
                self.offered[k] = str(v)
        stage = start_stage
        if stage == SECURITY and chap is not None:
            nsg = FULL_FEATURE if skip_operational else OPERATIONAL
            r = self._chap(base, chap, nsg, timeout)
            if r.status_class != 0:
                return self._login_failed(r, raise_on_fail)
            if r.nsg == FULL_FEATURE:
                return self._login_done(r)
            first_op = encode_keys(op)
        elif stage == SECURITY:
            sec = base + [("AuthMethod", "None")] + list(sec_keys or [])
            nsg = FULL_FEATURE if skip_operational else OPERATIONAL
            r, text = self._login_round(SECURITY, nsg, True, encode_keys(sec), timeout, vmax, vmin)
            self._record_answers(text)
            for _ in range(max_rounds):
                if r.status_class != 0 or r.transit:
                    break
                # target not ready to move on: continue with an empty request
                r, text = self._login_round(SECURITY, nsg, True, b"", timeout)
                self._record_answers(text)
            if r.status_class != 0:
                return self._login_failed(r, raise_on_fail)
            if r.csg != SECURITY:
                self.violation("Login Response CSG %d, expected 0" % r.csg)
            if r.nsg == FULL_FEATURE:
                return self._login_done(r)
            first_op = encode_keys(op)
        else:
            first_op = encode_keys(base) + encode_keys(op)
        # operational stage
        r, text = self._login_round(OPERATIONAL, FULL_FEATURE, True, first_op, timeout, vmax, vmin)
        pairs = self._record_answers(text)
        for _ in range(max_rounds):
            if r.status_class != 0:
                break
            reply = self._answer_target_offers(pairs, op)
            if r.transit and r.nsg == FULL_FEATURE and not reply:
                break
            r, text = self._login_round(OPERATIONAL, FULL_FEATURE, True, encode_keys(reply), timeout)
            pairs = self._record_answers(text)
        if r.status_class != 0:
            return self._login_failed(r, raise_on_fail)
        if not (r.transit and r.nsg == FULL_FEATURE):
            raise ISCSIError("target did not move to full feature phase")
        return self._login_done(r)

    def _answer_target_offers(self, pairs, op):
        """Keys the target offered on its own (not answers to ours) must be
        answered.  We accept the target's value, or NotUnderstood."""
        ours = set(k for k, _ in op) if isinstance(op, list) else set()
        declarative = {"MaxRecvDataSegmentLength", "TargetAlias", "TargetPortalGroupTag",
                       "TargetAddress", "TargetName", "InitiatorName", "InitiatorAlias"}
        reply = []
        for k, v in pairs:
            if k in ours or k in declarative or v in ("NotUnderstood", "Irrelevant", "Reject"):
                continue
            if k in NUMERIC_KEYS or k in BOOLEAN_KEYS or k in ("HeaderDigest", "DataDigest"):
                if k in ("HeaderDigest", "DataDigest"):
                    v = v.split(",")[0]
                reply.append((k, v))
                self.offered[k] = v
            else:
                reply.append((k, "NotUnderstood"))
        return reply

    def _login_failed(self, r, raise_on_fail):
        self.login_status = (r.status_class, r.status_detail)
        if raise_on_fail:
            raise LoginFailed(r.status_class, r.status_detail)
        return r

    def _login_done(self, r):
        self.login_status = (0, 0)
        self.tsih = r.tsih
        if self.tsih == 0:
            self.violation("final Login Response has TSIH 0")
        self.cmdsn = r.expcmdsn
        self.expcmdsn = r.expcmdsn
        self.maxcmdsn = r.maxcmdsn
        self._compute_params()
        self.full_feature = True
        self.conn.header_digest = self.params.header_digest
        self.conn.data_digest = self.params.data_digest
        self.conn.max_recv_dsl = self.params.max_recv_dsl
        return r

    def _compute_params(self):
        P = Params()
        o, a = self.offered, self.answers

        def num(key):
            lo, hi, dflt, fn = NUMERIC_KEYS[key]
            if key in a and a[key] not in ("Irrelevant", "NotUnderstood", "Reject") and a[key] is not None:
                try:
                    return int(a[key], 0)
                except ValueError:
                    self.violation("non-numeric answer %s=%s" % (key, a[key]))
            if key in o:
                try:
                    return int(o[key], 0)
                except ValueError:
                    pass
            return dflt

        def boolean(key):
            dflt, fn = BOOLEAN_KEYS[key]
            mine = yes(o[key]) if key in o else dflt
            theirs = yes(a[key]) if key in a and a[key] in ("Yes", "No") else mine
            return (mine or theirs) if fn == "or" else (mine and theirs)

        P.header_digest = a.get("HeaderDigest") == "CRC32C"
        P.data_digest = a.get("DataDigest") == "CRC32C"
        P.max_recv_dsl = int(o.get("MaxRecvDataSegmentLength", 8192))
        try:
            P.target_max_recv_dsl = int(a.get("MaxRecvDataSegmentLength", 8192))
        except ValueError:
            P.target_max_recv_dsl = 8192
        P.max_burst = num("MaxBurstLength")
        P.first_burst = num("FirstBurstLength")
        P.max_outstanding_r2t = num("MaxOutstandingR2T")
        P.error_recovery_level = num("ErrorRecoveryLevel")
        P.default_time2wait = num("DefaultTime2Wait")
        P.default_time2retain = num("DefaultTime2Retain")
        P.initial_r2t = boolean("InitialR2T")
        P.immediate_data = boolean("ImmediateData")
        P.data_pdu_in_order = boolean("DataPDUInOrder")
        P.data_sequence_in_order = boolean("DataSequenceInOrder")
        self.params = P

    # ---- PDU pump
    def _dispatch(self, p):
        self._update_sn(p)
        op = p.opcode
        if op == OP_DATA_IN:
            self._on_data_in(p)
        elif op == OP_SCSI_RESP:
            self._on_scsi_resp(p)
        elif op == OP_R2T:
            self._on_r2t(p)
        elif op == OP_NOP_IN:
            if p.itt == RSVD_TAG:
                if p.ttt != RSVD_TAG:   # target ping: answer it
                    bhs = build_nop_out(RSVD_TAG, p.ttt, self.cmdsn, self.expstatsn, 0,
                                        lun=0, immediate=True)
                    bhs = bhs[:8] + p.lun + bhs[16:]
                    self.conn.send_pdu(bhs)
            else:
                self.responses[p.itt] = p
        elif op in (OP_TMF_RESP, OP_TEXT_RESP, OP_LOGOUT_RESP):
            self.responses[p.itt] = p
        elif op == OP_REJECT:
            self.rejects.append(p)
            if len(p.data) >= 20:
                ritt, = struct.unpack_from(">I", p.data, 16)
                t = self.tasks.get(ritt)
                if t is not None:
                    t.reject = p
                    t.done = True
                self.responses.setdefault(("reject", ritt), p)
        elif op == OP_ASYNC:
            self.async_msgs.append(p)
        else:
            self.violation("unexpected %s in full feature phase" % p.name)
            self.responses[("unexpected", p.opcode)] = p

    def pump(self, timeout=None):
        """Receive and handle one PDU."""
        p = self.conn.recv_pdu(self.timeout if timeout is None else timeout)
        self._dispatch(p)
        return p

    def wait_for(self, cond, timeout=None, what="condition"):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout("timed out waiting for %s" % what)
            self.pump(left)

    # ---- SCSI
    def _wait_window(self, timeout=None):
        self.wait_for(lambda: sn_le(self.cmdsn, self.maxcmdsn), timeout, "CmdSN window")

    def submit(self, cdb, read_len=0, write_data=None, edtl=None, lun=None, attr=1,
               immediate=False, unsolicited=True, use_immediate_data=True):
        """Send a SCSI command (and its unsolicited data); returns the Task."""
        lun = self.lun if lun is None else lun
        if not immediate:
            self._wait_window()
        itt = self.next_itt()
        wlen = len(write_data) if write_data is not None else 0
        if edtl is None:
            edtl = read_len if read_len else wlen
        t = Task(itt, cdb, lun, read_len, write_data, edtl)
        P = self.params
        imm = b""
        unsol_end = 0
        if write_data is not None and wlen:
            unsol_limit = min(P.first_burst, wlen, edtl)
            if P.immediate_data and use_immediate_data:
                imm = t.write_data[:min(unsol_limit, P.target_max_recv_dsl)]
            unsol_end = len(imm)
            if not P.initial_r2t and unsolicited:
                unsol_end = unsol_limit
        flags = attr & 7
        if read_len:
            flags |= 0x40
        if write_data is not None:
            flags |= 0x20
        if unsol_end <= len(imm):
            flags |= 0x80
        t.cmdsn = self.cmdsn
        t.immediate_len = len(imm)
        t.unsol_end = max(unsol_end, len(imm))
        bhs = build_scsi_cmd(flags, lun, itt, edtl, self.cmdsn, self.expstatsn, cdb, len(imm),
                             immediate=immediate)
        self.tasks[itt] = t
        self.conn.send_pdu(bhs, imm)
        if not immediate:
            self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        if unsol_end > len(imm):
            self._send_data_out(t, RSVD_TAG, len(imm), unsol_end - len(imm))
        return t

    def _send_data_out(self, t, ttt, offset, length):
        mx = self.params.target_max_recv_dsl
        datasn = 0
        end = offset + length
        pos = offset
        while pos < end:
            n = min(mx, end - pos)
            final = pos + n >= end
            bhs = build_data_out(final, t.lun, t.itt, ttt, self.expstatsn, datasn, pos, n)
            self.conn.send_pdu(bhs, t.write_data[pos:pos + n])
            datasn += 1
            pos += n

    def _on_r2t(self, p):
        t = self.tasks.get(p.itt)
        if t is None:
            self.violation("R2T for unknown ITT 0x%x" % p.itt)
            return
        t.r2ts.append((p.r2tsn, p.offset, p.ddtl, p.ttt))
        if p.r2tsn != t.next_r2tsn:
            self.violation("R2T R2TSN %d, expected %d" % (p.r2tsn, t.next_r2tsn))
        t.next_r2tsn = p.r2tsn + 1
        if p.ttt == RSVD_TAG:
            self.violation("R2T with reserved TTT 0xffffffff")
        if p.ddtl == 0:
            self.violation("R2T with Desired Data Transfer Length 0")
        if p.ddtl > self.params.max_burst:
            self.violation("R2T Desired Data Transfer Length %d > MaxBurstLength %d"
                           % (p.ddtl, self.params.max_burst))
        if t.write_data is None or p.offset + p.ddtl > len(t.write_data):
            self.violation("R2T offset %d + length %d beyond the write data (%d)"
                           % (p.offset, p.ddtl, len(t.write_data or b"")))
            return
        self._send_data_out(t, p.ttt, p.offset, p.ddtl)

    def _on_data_in(self, p):
        t = self.tasks.get(p.itt)
        if t is None:
            self.violation("Data-In for unknown ITT 0x%x" % p.itt)
            return
        t.datain.append((p.datasn, p.offset, p.dsl, p.final, p.has_status))
        if p.datasn != t.next_datasn:
            self.violation("Data-In DataSN %d, expected %d (ITT 0x%x)" % (p.datasn, t.next_datasn, t.itt))
        t.next_datasn = p.datasn + 1
        if self.params.data_pdu_in_order and p.offset != t.next_offset:
            self.violation("Data-In BufferOffset %d, expected %d (DataPDUInOrder=Yes)"
                           % (p.offset, t.next_offset))
        t.next_offset = p.offset + p.dsl
        if p.offset + p.dsl > t.read_len:
            self.violation("Data-In offset %d + %d beyond the read buffer / EDTL %d"
                           % (p.offset, p.dsl, t.read_len))
        else:
            t.data[p.offset:p.offset + p.dsl] = p.data
        t.received += p.dsl
        t.max_offset = max(t.max_offset, p.offset + p.dsl)
        t.seq_bytes += p.dsl
        if t.seq_bytes > self.params.max_burst and not getattr(t, "burst_reported", False):
            t.burst_reported = True
            self.violation("Data-In sequence of %d bytes > MaxBurstLength %d without F bit "
                           "(RFC 7143 13.13; ITT 0x%x)" % (t.seq_bytes, self.params.max_burst, t.itt))
        if p.final:
            t.seq_bytes = 0
        if p.has_status:
            if not p.final:
                self.violation("Data-In with S bit but without F bit")
            t.status = p.status
            t.overflow, t.underflow, t.resid = p.overflow, p.underflow, p.resid
            t.phase_collapsed = True
            t.done = True
        elif p.overflow or p.underflow:
            self.violation("Data-In with O/U bit but no S bit")

    def _on_scsi_resp(self, p):
        t = self.tasks.get(p.itt)
        if t is None:
            self.violation("SCSI Response for unknown ITT 0x%x" % p.itt)
            return
        t.resp_pdu = p
        t.response = p.response
        t.status = p.status
        t.overflow, t.underflow, t.resid = p.overflow, p.underflow, p.resid
        if p.dsl >= 2:
            slen, = struct.unpack_from(">H", p.data, 0)
            t.sense = p.data[2:2 + slen]
        if p.response == 0 and t.read_len and p.expdatasn != len(t.datain):
            self.violation("SCSI Response ExpDataSN %d but %d Data-In PDUs were sent "
                           "(RFC 7143 11.4.8)" % (p.expdatasn, len(t.datain)))
        t.done = True

    def wait_task(self, t, timeout=None):
        self.wait_for(lambda: t.done, timeout, "task ITT 0x%x" % t.itt)
        self.tasks.pop(t.itt, None)
        return t

    def check_completion(self, t):
        """Extra checks on a finished task: residuals and data coverage."""
        if t.reject is not None or t.status != GOOD:
            return
        if t.read_len:
            if t.received != t.read_len and not t.underflow:
                self.violation("read of %d bytes got %d bytes without underflow" % (t.read_len, t.received))
        if t.underflow or t.overflow:
            self.violation("unexpected residual (O=%d U=%d count %d) on a full-size transfer"
                           % (t.overflow, t.underflow, t.resid))

    def ready(self, tries=5, timeout=None):
        """TEST UNIT READY until GOOD (clears a unit attention); bounded."""
        t = None
        for _ in range(tries):
            t = self.command(cdb_test_unit_ready(), timeout=timeout)
            if t.status == GOOD:
                return t
        raise ISCSIError("TEST UNIT READY not GOOD after %d tries: status %r sense %s"
                         % (tries, t.status, t.sense.hex()))

    def command(self, cdb, read_len=0, write_data=None, timeout=None, **kw):
        t = self.submit(cdb, read_len, write_data, **kw)
        return self.wait_task(t, timeout)

    def read(self, lba, blocks, block_size=512, cdb16=False, timeout=None):
        cdb = cdb_read16(lba, blocks) if cdb16 else cdb_read10(lba, blocks)
        t = self.command(cdb, read_len=blocks * block_size, timeout=timeout)
        self.check_completion(t)
        return t

    def write(self, lba, data, block_size=512, cdb16=False, timeout=None, **kw):
        blocks = len(data) // block_size
        cdb = cdb_write16(lba, blocks) if cdb16 else cdb_write10(lba, blocks)
        t = self.command(cdb, write_data=data, timeout=timeout, **kw)
        self.check_completion(t)
        return t

    # ---- other requests
    def nop(self, data=b"", timeout=None, immediate=True):
        itt = self.next_itt()
        if not immediate:
            self._wait_window(timeout)
        bhs = build_nop_out(itt, RSVD_TAG, self.cmdsn, self.expstatsn, len(data), immediate=immediate)
        self.conn.send_pdu(bhs, data)
        if not immediate:
            self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        self.wait_for(lambda: itt in self.responses or ("reject", itt) in self.responses,
                      timeout, "NOP-In")
        p = self.responses.pop(itt, None) or self.responses.pop(("reject", itt))
        if p.opcode == OP_NOP_IN and p.data != bytes(data):
            self.violation("NOP-In did not echo the ping data")
        return p

    def tmf(self, function, ref_itt=RSVD_TAG, refcmdsn=0, lun=None, timeout=None):
        itt = self.next_itt()
        lun = self.lun if lun is None else lun
        bhs = build_tmf(function, lun, itt, ref_itt, self.cmdsn, self.expstatsn, refcmdsn)
        self.conn.send_pdu(bhs)
        self.wait_for(lambda: itt in self.responses or ("reject", itt) in self.responses,
                      timeout, "TMF response")
        return self.responses.pop(itt, None) or self.responses.pop(("reject", itt))

    def text(self, keys, timeout=None, max_pdu=None, immediate=False, max_rounds=1024):
        """Text negotiation, C-bit continuation in both directions.
        Returns (list of (key, value), last Text Response PDU)."""
        raw = encode_keys(keys)
        mx = max_pdu or self.params.target_max_recv_dsl
        parts = [raw[i:i + mx] for i in range(0, len(raw), mx)] or [b""]
        itt = self.next_itt()
        ttt = RSVD_TAG
        answer = bytearray()
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if not immediate:
                self._wait_window(timeout)
            bhs = build_text(last, not last, itt, ttt, self.cmdsn, self.expstatsn, len(part),
                             immediate)
            self.conn.send_pdu(bhs, part)
            if not immediate:
                self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
            self.wait_for(lambda: itt in self.responses or ("reject", itt) in self.responses,
                          timeout, "Text Response")
            p = self.responses.pop(itt, None) or self.responses.pop(("reject", itt))
            if p.opcode != OP_TEXT_RESP:
                return None, p
            if not last:
                if p.dsl:
                    self.violation("Text Response to a C=1 Text Request carries data")
                ttt = p.ttt
        answer += p.data
        rounds = 0
        while (p.cont or not p.final) and rounds < max_rounds:
            rounds += 1
            ttt = p.ttt
            bhs = build_text(True, False, itt, ttt, self.cmdsn, self.expstatsn, 0, immediate)
            self.conn.send_pdu(bhs)
            self.wait_for(lambda: itt in self.responses or ("reject", itt) in self.responses,
                          timeout, "Text Response")
            p = self.responses.pop(itt, None) or self.responses.pop(("reject", itt))
            if p.opcode != OP_TEXT_RESP:
                return None, p
            answer += p.data
        return decode_keys(answer), p

    def send_targets(self, what="All", timeout=None):
        pairs, p = self.text([("SendTargets", what)], timeout)
        return pairs

    def logout(self, reason=0, timeout=None):
        """Logout (reason 0: close the session).  'After Logout, the TCP
        connection referred by the CID MUST be closed at both ends' (RFC 7143
        11.14): we close our end once the response is in."""
        itt = self.next_itt()
        bhs = build_logout(reason, itt, self.cid, self.cmdsn, self.expstatsn)
        self.conn.send_pdu(bhs)
        self.wait_for(lambda: itt in self.responses or ("reject", itt) in self.responses,
                      timeout, "Logout Response")
        p = self.responses.pop(itt, None) or self.responses.pop(("reject", itt))
        self.close()
        return p


# --------------------------------------------------------------------------
# Test image and daemon helpers

def image_bytes(mib):
    """The same pattern as tests/lib/common.sh make_image: each 512-byte
    sector starts with b'LBA%012d' then pseudo-random bytes (seed 42)."""
    rnd = random.Random(42)
    out = bytearray()
    for lba in range(mib * 2048):
        head = b"LBA%012d" % lba
        out += head + rnd.randbytes(512 - len(head))
    return bytes(out)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def stop_process(proc, log, timeout=15.0):
    """SIGTERM a daemon started by a test and wait.  Returns its problems:
    no exit within timeout (then killed), already dead, a non-zero exit
    status, a sanitizer report in log() (the text of its log); with any,
    the log's last lines too."""
    problems = []
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            problems.append("pristined did not exit within %ss of SIGTERM" % timeout)
            proc.kill()
            proc.wait(10)
    else:
        problems.append("pristined was not running at the end (exit status %s)" % proc.returncode)
    if proc.returncode != 0:
        problems.append("pristined exit status %s" % proc.returncode)
    text = log()
    for bad in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
        if bad in text:
            problems.append("sanitizer report in the log: %s" % bad)
    if problems:
        problems.append("last log lines:\n" + "\n".join(text.splitlines()[-40:]))
    return problems


class Daemon:
    """Starts build/asan/pristined (or $PRISTINED) on a free port.

    With PRISTINE_EXTERNAL=HOST:PORT/IQN/LUN set, nothing is started and the
    tests talk to that already-running target instead (for developing the
    initiator itself)."""

    def __init__(self, mib=16, writable=False, target=None, extra=()):
        self.mib = mib
        self.writable = writable
        self.target_arg = target
        self.extra = list(extra)
        self.proc = None
        self.tmp = tempfile.mkdtemp(prefix="pristine-proto.")
        self.log_path = os.path.join(self.tmp, "pristined.log")
        self.external = os.environ.get("PRISTINE_EXTERNAL")
        self.binary = os.environ.get("PRISTINED", os.path.join(TOP, "build", "asan", "pristined"))
        self.image = None
        self.lun = 0
        self.host = "127.0.0.1"

    def available(self):
        return bool(self.external) or os.access(self.binary, os.X_OK)

    def start(self, timeout=20.0):
        self.expected = image_bytes(self.mib)
        if self.external:
            hp, self.target, lun = self.external.split("/")
            host, port = hp.rsplit(":", 1)
            self.host, self.port, self.lun = host, int(port), int(lun)
            return self
        self.image = os.path.join(self.tmp, "disk.img")
        with open(self.image, "wb") as f:
            f.write(self.expected)
        self.state = os.path.join(self.tmp, "state")
        os.mkdir(self.state)
        self.port = free_port()
        args = [self.binary, "--image", self.image, "--listen", "127.0.0.1:%d" % self.port,
                "--state", self.state]
        if self.target_arg:
            args += ["--target", self.target_arg]
        if not self.writable:
            # The golden image served write-protected to all, no overlays.
            args.append("--read-only")
        args += self.extra
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
        self.logf = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            log = self.log()
            if "listening" in log:
                m = re.search(r"target (iqn\.[^\s,;'\"]+)", log)
                if not m:
                    raise ISCSIError("no 'target iqn...' line in the log:\n" + log)
                self.target = m.group(1)
                return self
            if self.proc.poll() is not None:
                raise ISCSIError("pristined exited at start (%s):\n%s" % (self.proc.returncode, log))
            time.sleep(0.05)
        raise ISCSIError("pristined did not print 'listening' within %ss:\n%s" % (timeout, self.log()))

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def alive(self):
        if self.proc is None:
            try:
                socket.create_connection((self.host, self.port), timeout=3).close()
                return True
            except OSError:
                return False
        return self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM; returns a list of problems (empty = clean exit)."""
        if self.proc is None:
            return []
        problems = stop_process(self.proc, self.log, timeout)
        self.logf.close()
        self.proc = None
        return problems

    def cleanup(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)

    def session(self, initiator_name="iqn.2024-01.test.pristine:init", **kw):
        kw.setdefault("lun", self.lun)
        return Session(self.host, self.port, initiator_name, target_name=self.target, **kw)


class ConfDaemon(Daemon):
    """pristined -c FILE: a [server] section on a free port with its state
    and admin socket in the test's directory, one [image disk] of mib MiB,
    then `body` (more sections/keys; `server_extra` goes into [server]).
    The file is mode 0600 (it may hold CHAP secrets).  start(fresh=False)
    restarts on the same file, state and port."""

    TARGET = "iqn.2026-11.org.pristine:disk"

    def __init__(self, body="", server_extra="", **kw):
        super().__init__(**kw)
        self.body = body
        self.server_extra = server_extra

    def start(self, timeout=20.0, fresh=True):
        if fresh:
            self.expected = image_bytes(self.mib)
            self.image = os.path.join(self.tmp, "disk.img")
            with open(self.image, "wb") as f:
                f.write(self.expected)
            self.port = free_port()
            self.sock = os.path.join(self.tmp, "ctl.sock")
            self.conf = os.path.join(self.tmp, "pristine.conf")
            with open(self.conf, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:%d\nstate = %s/state\nsocket = %s\n%s\n"
                        "[image disk]\npath = %s\n\n%s" % (self.port, self.tmp, self.sock,
                                                          self.server_extra, self.image, self.body))
            os.chmod(self.conf, 0o600)
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1:exitcode=67")
        self.logf = open(self.log_path, "ab")
        mark = len(self.log())
        self.proc = subprocess.Popen([self.binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        self.target = self.TARGET
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ISCSIError("pristined -c exited at start:\n" + self.log())
            if "listening" in self.log()[mark:] and os.path.exists(self.sock):
                return self
            time.sleep(0.05)
        raise ISCSIError("pristined -c did not listen:\n" + self.log())


# --------------------------------------------------------------------------
# A tiny test harness shared by the protocol tests

class Checker:
    """Collects failures of named cases; a test prints them all and exits 1."""

    def __init__(self, verbose=True):
        self.failures = []
        self.passes = 0
        self.verbose = verbose

    def case(self, name, fn, *a, **kw):
        t0 = time.monotonic()
        try:
            res = fn(*a, **kw)
            problems = res if isinstance(res, list) else []
        except Exception as e:   # a case's exception is a failure of that case
            problems = ["%s: %s" % (type(e).__name__, e)]
        dt = time.monotonic() - t0
        if problems:
            self.failures.append((name, problems))
            print("FAIL %s (%.1fs)" % (name, dt))
            for p in problems:
                print("     - " + str(p).replace("\n", "\n       "))
        else:
            self.passes += 1
            if self.verbose:
                print("ok   %s (%.1fs)" % (name, dt))
        return not problems

    def finish(self):
        print("%d cases passed, %d failed" % (self.passes, len(self.failures)))
        return 1 if self.failures else 0

    def finish_with(self, d):
        """Stop daemon d (its problems - exit status, sanitizer reports -
        count as a failed case), remove its files, and finish."""
        problems = d.stop()
        if problems:
            self.failures.append(("daemon", problems))
            print("FAIL daemon:\n  " + "\n  ".join(problems))
        d.cleanup()
        return self.finish()


# ---- a pristined for a test ---------------------------------------------

def wait_listening(proc, port, log_path=None, timeout=20.0):
    """Return once 127.0.0.1:port accepts a connection.  Raises ISCSIError
    when proc exits first (with the tail of log_path) or after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            if proc is not None and proc.poll() is not None:
                tail = ""
                if log_path:
                    with open(log_path, "rb") as f:
                        tail = f.read().decode("utf-8", "replace")[-1500:]
                raise ISCSIError("pristined exited at start: " + tail)
            time.sleep(0.05)
    raise ISCSIError("pristined did not listen on port %d" % port)


def start_quick(binary, image, state, port, log, wait=True):
    """pristined in quick mode on 127.0.0.1:port over image with state
    directory state, output to the open file log; NOP-Ins off.  With wait,
    returns once it listens (see wait_listening)."""
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0:exitcode=66")
    p = subprocess.Popen([binary, "--image", image, "--listen", "127.0.0.1:%d" % port,
                          "--state", state, "--nop-interval", "0"],
                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    return wait_listening(p, port, log.name) if wait else p


def sync_cache(s):
    """SYNCHRONIZE CACHE(10) on session s; ISCSIError unless GOOD."""
    t = s.command(bytes([0x35] + [0] * 9))
    if t.status != 0:
        raise ISCSIError("SYNCHRONIZE CACHE status %r" % t.status)


def report_luns(s, lun=0):
    """The LUNs REPORT LUNS on session s lists, in its order (asserts GOOD)."""
    t = s.command(cdb_report_luns(), read_len=4096, lun=lun)
    assert t.status == GOOD, ("REPORT LUNS", t.status, t.sense.hex())
    n, = struct.unpack_from(">I", t.data, 0)
    return [struct.unpack_from(">H", t.data, 8 + i)[0] & 0x3fff for i in range(0, n, 8)]
