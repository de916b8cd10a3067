#!/usr/bin/env python3
"""Summarise a btmon capture (`btmon -w`, e.g. /out/ble.btsnoop from POLLEN_VLAB_BTMON=1) on the host.

Why: bookworm's btmon 5.66 segfaults part-way through `btmon -r` on these captures, and the questions we ask are
narrow: which HCI commands/events ran per controller (PHY, data length, ext. advertising?), how many ATT PDUs of
each opcode went over which channel (fixed ATT vs EATT), and the LE credit-based connection parameters
(MTU, MPS, initial credits) of every L2CAP CoC.

Usage: btsnoop-summary.py FILE [--seq HCI_INDEX]   (--seq: timeline of commands/events of one controller)
"""
import collections
import signal
import struct
import sys

# btsnoop "monitor" datalink (2001) opcodes
CMD, EVT, ACL_TX, ACL_RX = 2, 3, 4, 5
LE_SIG = {0x14: "LE CB conn req", 0x15: "LE CB conn rsp", 0x16: "LE flow credit", 0x17: "ECRED conn req",
          0x18: "ECRED conn rsp", 0x06: "disconn req", 0x07: "disconn rsp"}


def records(path):
    with open(path, "rb") as f:
        hdr = f.read(16)
        if hdr[:8] != b"btsnoop\0":
            sys.exit(f"{path}: not a btsnoop file")
        while True:
            h = f.read(24)
            if len(h) < 24:
                return
            _olen, ilen, flags, _drops, ts = struct.unpack(">IIIIq", h)
            yield flags >> 16, flags & 0xFFFF, ts / 1e6, f.read(ilen)


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet when piped into head
    path = sys.argv[1]
    seq = int(sys.argv[sys.argv.index("--seq") + 1]) if "--seq" in sys.argv else None
    hci, acl, t0 = collections.Counter(), collections.Counter(), None
    for idx, op, t, d in records(path):
        t0 = t if t0 is None else t0
        if op == CMD:
            key = (idx, "cmd", f"{struct.unpack('<H', d[:2])[0]:04x}")
        elif op == EVT:
            sub = f" sub {d[2]:02x}" if d[0] == 0x3E else ""
            if d[0] == 0x0E:
                sub = f" for {struct.unpack('<H', d[3:5])[0]:04x} status {d[5]:02x}"
            elif d[0] == 0x0F:
                sub = f" for {struct.unpack('<H', d[4:6])[0]:04x} status {d[2]:02x}"
            key = (idx, "evt", f"{d[0]:02x}{sub}")
        elif op in (ACL_TX, ACL_RX):
            handle = struct.unpack("<H", d[:2])[0]
            if (handle >> 12) & 3 == 1:  # continuation fragment
                acl[(idx, "tx" if op == ACL_TX else "rx", "continuation")] += 1
                continue
            _l2len, cid = struct.unpack("<HH", d[4:8])
            direction = "tx" if op == ACL_TX else "rx"
            if cid == 4:
                acl[(idx, direction, f"ATT op {d[8]:02x}")] += 1
            elif cid == 5:
                code, n = d[8], struct.unpack("<H", d[10:12])[0]
                p = d[12:12 + n]
                acl[(idx, direction, LE_SIG.get(code, f"LE sig {code:02x}"))] += 1
                if code == 0x14 and direction == "tx":
                    print("hci%d CoC request psm=%d scid=%d mtu=%d mps=%d credits=%d" % ((idx,) + struct.unpack("<5H", p[:10])))
                elif code == 0x15 and direction == "tx":
                    print("hci%d CoC response dcid=%d mtu=%d mps=%d credits=%d result=%d" % ((idx,) + struct.unpack("<5H", p[:10])))
            else:
                acl[(idx, direction, f"cid {cid}")] += 1
            continue
        else:
            continue
        hci[key] += 1
        if seq is not None and idx == seq:
            print(f"{t - t0:9.3f} hci{idx} {key[1]} {key[2]}")
    for k in sorted(hci):
        print(f"hci{k[0]} {k[1]} {k[2]}: {hci[k]}")
    for k in sorted(acl):
        print(f"hci{k[0]} acl {k[1]} {k[2]}: {acl[k]}")


if __name__ == "__main__":
    main()
