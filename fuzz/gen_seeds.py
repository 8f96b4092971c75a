#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (fuzz/corpus/*), built with
the test initiator's PDU builders: a discovery login + SendTargets, a normal
login followed by READ/WRITE (immediate and unsolicited data)/NOP/TMF/
Text/Logout, negotiation texts, and CDBs of the commands we serve; and the
CHAP harness's values and login conversations (fuzz_chap.c describes the
format).  `gen_seeds.py chap` writes only the CHAP seeds.

The overlay_meta seeds are made by the real overlay code instead:
PRISTINE_FUZZ_SEEDS=fuzz/corpus/overlay_meta build/fuzz/fuzz_overlay_meta
and so are the bootset seeds, by the real boot set encoder:
PRISTINE_FUZZ_SEEDS=fuzz/corpus/bootset build/fuzz/fuzz_bootset"""
import base64
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "lib"))


def login(keys, itt=1, cmdsn=1, stage=1):
    data = I.encode_keys(keys)
    flags = 0x80 | (stage << 2) | 3          # T, CSG=stage, NSG=full feature
    return I.build_login(flags, b"\x40\x00\x01\x37\x00\x01", 0, itt, 0, cmdsn, 0, len(data)) + \
        data + b"\0" * I.pad4(len(data))


def pdu(bhs, data=b""):
    return bhs + data + b"\0" * I.pad4(len(data))


def write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)


def chap_seeds(c):
    """fuzz_chap: decode mode (byte 0 even: cap byte, value) and login
    conversations (byte 0 odd: requests split by 0xff, each its flags
    byte then text with the harness's @ tokens)."""
    d = os.path.join(c, "chap")
    os.makedirs(d, exist_ok=True)
    cap16, cap33, cap1024 = 15, 32, 192
    blob = bytes(range(256)) * 4
    dec = {
        "dec_hex": (cap33, b"0x0123456789abcdefABCDEF0123456789"),
        "dec_hex_odd": (cap16, b"0X123"),
        "dec_hex_bad": (cap16, b"0x12g4"),
        "dec_hex_long": (cap16, b"0x" + b"ab" * 17),
        "dec_b64": (cap33, b"0b" + base64.b64encode(blob[:32])),
        "dec_b64_pad1": (cap16, b"0B" + base64.b64encode(blob[:2])),
        "dec_b64_pad2": (cap16, b"0b" + base64.b64encode(blob[:1])),
        "dec_b64_space": (cap16, b"0bAA EC\tAw=="),
        "dec_b64_1024": (cap1024, b"0b" + base64.b64encode(blob[:1024])),
        "dec_hex_1024": (cap1024, b"0x" + blob[:1024].hex().encode()),
        "dec_b64_noncanon": (cap16, b"0bAB=="),
        "dec_empty": (cap16, b"0x"),
    }
    for name, (cap, val) in dec.items():
        write(os.path.join(d, name), bytes([0, cap]) + val)

    def conv(flags, *reqs):
        return bytes([flags]) + b"\xff".join(bytes([f]) + t for f, t in reqs)

    auth = (0x81, b"AuthMethod=CHAP,None\0")
    ffp = (0x87, b"HeaderDigest=None\0DataDigest=None\0MaxRecvDataSegmentLength=65536\0")
    convs = {
        "login_md5": conv(3, auth, (0x81, b"CHAP_A=5\0"), (0x81, b"CHAP_N=@N\0CHAP_R=@R\0"), ffp),
        "login_sha256_b64": conv(3, auth, (0x81, b"CHAP_A=7,5\0"), (0x81, b"CHAP_N=@N\0CHAP_R=@B\0"), ffp),
        "login_mutual": conv(7, auth, (0x81, b"CHAP_A=5\0"),
                             (0x81, b"CHAP_N=@N\0CHAP_R=@R\0CHAP_I=77\0CHAP_C=@C\0"), ffp),
        "login_mutual_b64": conv(7, auth, (0x81, b"CHAP_A=7\0"),
                                 (0x81, b"CHAP_N=@N\0CHAP_R=@R\0CHAP_I=0x2\0CHAP_C=0b" +
                                  base64.b64encode(blob[:48]) + b"\0"), ffp),
        "login_mutual_unset": conv(3, auth, (0x81, b"CHAP_A=5\0"),
                                   (0x81, b"CHAP_N=@N\0CHAP_R=@R\0CHAP_I=1\0CHAP_C=@C\0"), ffp),
        "login_reflect": conv(7, auth, (0x81, b"CHAP_A=5\0"),
                              (0x81, b"CHAP_N=@N\0CHAP_R=@R\0CHAP_I=@I\0CHAP_C=@E\0"), ffp),
        "login_wrong": conv(3, auth, (0x81, b"CHAP_A=5\0"), (0x81, b"CHAP_N=@N\0CHAP_R=@W\0"), ffp),
        "login_wrong_name": conv(3, auth, (0x81, b"CHAP_A=5\0"), (0x81, b"CHAP_N=@M\0CHAP_R=@R\0"), ffp),
        "login_alg_list": conv(3, auth, (0x81, b"CHAP_A=0x99,abc,,007,5\0"),
                               (0x00, b"CHAP_N=@N\0CHAP_R=@R\0"), (0x81, b""), ffp),
        "login_skip_security": conv(3, ffp),
        "login_none": conv(1, (0x81, b"AuthMethod=None\0"), ffp),
        "login_none_chap_keys": conv(1, (0x81, b"AuthMethod=None\0CHAP_A=5\0CHAP_X=1\0"), ffp),
        "login_discovery": conv(11, auth, (0x81, b"CHAP_A=5\0"), (0x81, b"CHAP_N=@N\0CHAP_R=@R\0"),
                                (0x87, b"")),
        "login_continued": conv(3, (0x40, b"AuthMeth"), (0x81, b"od=CHAP\0"), (0x81, b"CHAP_A=5\0"),
                                (0x81, b"CHAP_N=@N\0CHAP_R=@R\0"), ffp),
        "login_all_at_once": conv(3, (0x81, b"AuthMethod=CHAP\0CHAP_A=5\0"),
                                  (0x81, b"CHAP_N=@N\0CHAP_R=@R\0AuthMethod=CHAP\0"), ffp),
        "login_r_early": conv(3, auth, (0x81, b"CHAP_A=5\0CHAP_N=@N\0CHAP_R=@R\0"), ffp),
    }
    for name, blob2 in convs.items():
        write(os.path.join(d, name), blob2)


def main():
    c = os.path.join(HERE, "corpus")
    chap_seeds(c)
    if sys.argv[1:] == ["chap"]:
        return
    global I
    import iscsi_initiator as I
    for d in ("pdu_stream", "login_text", "cdb"):
        os.makedirs(os.path.join(c, d), exist_ok=True)
    base = [("InitiatorName", "iqn.2024-01.fuzz:init"), ("SessionType", "Normal"),
            ("TargetName", "iqn.2024-01.fuzz:disk"), ("HeaderDigest", "None"),
            ("DataDigest", "None"), ("InitialR2T", "No"), ("ImmediateData", "Yes"),
            ("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "65536"),
            ("FirstBurstLength", "4096")]
    disc = [("InitiatorName", "iqn.2024-01.fuzz:init"), ("SessionType", "Discovery")]
    text = I.encode_keys([("SendTargets", "All")])
    write(os.path.join(c, "pdu_stream", "discovery"),
          login(disc) + pdu(I.build_text(True, False, 2, 0xffffffff, 1, 1, len(text)), text) +
          pdu(I.build_logout(0, 3, 0, 1, 2)))
    s = login(base)
    s += pdu(I.build_scsi_cmd(0xc1, 0, 2, 4096, 1, 1, I.cdb_read10(0, 8), 0))
    s += pdu(I.build_scsi_cmd(0xa1, 0, 3, 1024, 2, 2, I.cdb_write10(8, 2), 1024), b"\xab" * 1024)
    s += pdu(I.build_scsi_cmd(0x21, 0, 4, 8192, 3, 3, I.cdb_write10(16, 16), 4096), b"\xcd" * 4096)
    s += pdu(I.build_data_out(True, 0, 4, 0xffffffff, 3, 0, 4096, 0), b"")
    s += pdu(I.build_nop_out(5, 0xffffffff, 4, 4, 4), b"ping")
    s += pdu(I.build_tmf(5, 0, 6, 0xffffffff, 4, 5))
    s += pdu(I.build_text(True, False, 7, 0xffffffff, 4, 6, len(text)), text)
    s += pdu(I.build_logout(0, 8, 0, 4, 7))
    write(os.path.join(c, "pdu_stream", "normal"), s)
    # 256 KiB PDUs: READs of several 32 KiB Data-In PDUs are read PDU by
    # PDU (src/proto/datain.c); one with EDTL short of its length.
    big = [(k, "262144" if k == "MaxRecvDataSegmentLength" else v) for k, v in base]
    s = login(big)
    s += pdu(I.build_scsi_cmd(0xc1, 0, 2, 262144, 1, 1, I.cdb_read10(0, 512), 0))
    s += pdu(I.build_scsi_cmd(0xc1, 0, 3, 100001, 2, 2, I.cdb_read10(7, 256), 0))
    s += pdu(I.build_logout(0, 4, 0, 3, 3))
    write(os.path.join(c, "pdu_stream", "bigread"), s)
    write(os.path.join(c, "login_text", "normal"), I.encode_keys(base))
    write(os.path.join(c, "login_text", "discovery"), I.encode_keys(disc + [("SendTargets", "All")]))
    write(os.path.join(c, "login_text", "odd"),
          b"HeaderDigest=CRC32C,None\0X-foo=bar\0MaxBurstLength=0x1000\0IFMarkInt=1~65535\0NoEq\0")
    cdbs = {
        "read10": (0x01, 4096, I.cdb_read10(1, 8)), "write10": (0x02, 1024, I.cdb_write10(2, 2)),
        "inquiry_vpd83": (0x01, 255, bytes([0x12, 1, 0x83, 0, 255, 0])),
        "rsoc": (0x01, 4096, bytes([0xa3, 0x0c, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, 0])),
        "unmap": (0x02, 24, bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0])),
        "caw": (0x02, 1024, bytes([0x89, 0] + [0] * 8 + [0, 0, 0, 1, 0, 0])),
        "pr_out": (0x02, 24, bytes([0x5f, 0, 0, 0, 0, 0, 0, 0, 24, 0])),
        "mode_sense": (0x01, 255, bytes([0x1a, 0, 0x3f, 0, 255, 0])),
    }
    for name, (fl, edtl, cdb) in cdbs.items():
        cdb = cdb + bytes(16 - len(cdb))
        write(os.path.join(c, "cdb", name), bytes([fl]) + edtl.to_bytes(4, "big") + cdb + b"\x5a" * min(edtl, 1024))


if __name__ == "__main__":
    main()
