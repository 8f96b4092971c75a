#!/usr/bin/env python3
"""Catch Wake-on-LAN frames on an interface (AF_PACKET, raw Ethernet).

usage: catch.py IFACE SECONDS OUT.json

Prints "ready" once the socket is bound, then for SECONDS records every
IPv4/UDP frame seen on IFACE: Ethernet destination, IPv4 destination, UDP
destination port and the UDP payload (hex), as a JSON list in OUT.json.
Frames are taken apart by hand (struct, fixed offsets) so that the test
checks the bytes on the wire, not what a library makes of them.
"""
import json
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def main():
    iface, secs, out = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.2)
    print("ready", flush=True)
    frames = []
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            f, addr = s.recvfrom(65535)
        except socket.timeout:
            continue
        if addr[2] == socket.PACKET_OUTGOING or len(f) < 14 + 20 + 8:
            continue
        dst_mac = f[0:6]
        (ethertype,) = struct.unpack("!H", f[12:14])
        if ethertype != 0x0800:
            continue
        ip = f[14:]
        ihl = (ip[0] & 0x0F) * 4
        (total,) = struct.unpack("!H", ip[2:4])
        if ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[ihl:total]
        sport, dport, ulen = struct.unpack("!HHH", udp[0:6])
        frames.append({
            "eth_dst": dst_mac.hex(":"),
            "ip_src": socket.inet_ntoa(ip[12:16]),
            "ip_dst": socket.inet_ntoa(ip[16:20]),
            "udp_dport": dport,
            "udp_len": ulen,
            "payload": udp[8:ulen].hex(),
        })
    with open(out, "w") as fh:
        json.dump(frames, fh)


if __name__ == "__main__":
    main()
