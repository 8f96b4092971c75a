#!/usr/bin/env python3
"""xdisk_io.py - one session of a PC on its image's target, for the extra
disk tests (tests/disks/test_xdisk_*.sh), through the project's Python
initiator (tests/lib/iscsi_initiator.py).

  xdisk_io.py PORT TARGET INITIATOR ACTION [ARGS]   prints the answer:
    luns               the LUNs REPORT LUNS lists, e.g. "0 1 2"
    write LUN BYTE     8 blocks of BYTE (hex) at LBA 8: "GOOD" or "SENSE KEY k"
    read LUN BYTE      "same" when LBA 8..15 are all BYTE, else "differs"
    gold LUN           the first 15 bytes of LBA 0 (the golden pattern)
    fill LUN           256 KiB writes from LBA 0 up to the disk's end:
                       "GOOD <MiB>", or "SENSE KEY k ASC xx/yy after <KiB> KiB"
"""
import os
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

port, target, initiator, act, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
s = I.Session("127.0.0.1", port, initiator_name=initiator, target_name=target)
s.login()
s.ready()


def clear(lun):
    """A unit attention of its own (power on) on each LU: cleared first."""
    for _ in range(5):
        if s.command(I.cdb_test_unit_ready(), lun=lun).status == I.GOOD:
            return


if act == "luns":
    print(" ".join(str(lun) for lun in I.report_luns(s)))
elif act == "write":
    lun, b = int(args[0]), int(args[1], 16)
    clear(lun)
    t = s.command(I.cdb_write10(8, 8), write_data=bytes([b]) * 4096, lun=lun)
    print("GOOD" if t.status == I.GOOD else "SENSE KEY %d" % (t.sense[2] & 0xf))
elif act == "read":
    lun, b = int(args[0]), int(args[1], 16)
    clear(lun)
    t = s.command(I.cdb_read10(8, 8), read_len=4096, lun=lun)
    assert t.status == I.GOOD, t.sense.hex()
    print("same" if bytes(t.data) == bytes([b]) * 4096 else "differs")
elif act == "gold":
    lun = int(args[0])
    clear(lun)
    t = s.command(I.cdb_read10(0, 1), read_len=512, lun=lun)
    assert t.status == I.GOOD, t.sense.hex()
    print(bytes(t.data[:15]).decode(errors="replace"))
elif act == "fill":
    lun = int(args[0])
    clear(lun)
    t = s.command(I.cdb_read_capacity10(), read_len=8, lun=lun)
    assert t.status == I.GOOD, t.sense.hex()
    last, bs = struct.unpack_from(">II", t.data, 0)
    step = (256 << 10) // bs
    lba = 0
    while lba <= last:
        n = min(step, last + 1 - lba)
        t = s.command(I.cdb_write10(lba, n), write_data=b"\x77" * (n * bs), lun=lun)
        if t.status != I.GOOD:
            print("SENSE KEY %d ASC %02x/%02x after %d KiB" % (t.sense[2] & 0xf, t.sense[12], t.sense[13],
                                                             lba * bs >> 10))
            break
        lba += n
    else:
        print("GOOD %d" % ((last + 1) * bs >> 20))
else:
    sys.exit("unknown action " + act)
s.logout()
