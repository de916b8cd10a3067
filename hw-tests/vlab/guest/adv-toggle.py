#!/usr/bin/env python3
"""Toggles LE advertising of one controller through a raw HCI socket, for tests/le-connect-gap.sh.

Usage: adv-toggle.py HCI_INDEX   (runs until killed; the advertising parameters and data must already be set,
e.g. by `btmgmt add-adv`)

Each cycle enables advertising, keeps it on for either no time at all (half the cycles) or 0.1-0.4 s, then disables
it. btvirt reports an advertiser to a scanner at the enable, so a scanner that answers a no-time cycle with LE Create
Connection lands in the gap, and btvirt fails it at once with status 0x3e; the long cycles let connects succeed.
Raw HCI commands, not btmgmt: a btmgmt call takes tens of milliseconds under TCG, far longer than the gap needs.
"""
import random
import socket
import struct
import sys
import time

LE_SET_ADVERTISE_ENABLE = (0x08 << 10) | 0x000A


def send_enable(sock, on):
    sock.send(b"\x01" + struct.pack("<HBB", LE_SET_ADVERTISE_ENABLE, 1, 1 if on else 0))


def main():
    sock = socket.socket(socket.AF_BLUETOOTH, socket.SOCK_RAW, socket.BTPROTO_HCI)
    sock.bind((int(sys.argv[1]),))
    while True:
        send_enable(sock, True)
        time.sleep(0 if random.random() < 0.5 else random.uniform(0.1, 0.4))
        send_enable(sock, False)
        time.sleep(random.uniform(0.02, 0.1))


if __name__ == "__main__":
    main()
