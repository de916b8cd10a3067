#!/bin/bash
# Pollen's conformance suite on real BlueZ, inside the lab guest. Run by `pollen-hw-tests vlab`, which shares the
# suite binary (built with --features bluez,btleplug) at /hostshare.
#
# Two suite runs: the BlueZ backend on every node (-> /out/conformance.json), then, when the binary has the btleplug
# backend, btleplug as the central-only node 0 on hci0 against the BlueZ peripheral on hci1
# (-> /out/conformance-btleplug.json). POLLEN_VLAB_BACKENDS (default "bluez btleplug") picks the runs.
#
# Radio topology: two btvirt media of two controllers each (a btvirt controller handles one LE connection only, see
# ble-env.sh): medium 0 = {hci0, hci1}, medium 1 = {hci2, hci3}. Pairs use hci0 + hci1; the relay chain is
# A = hci0, B = hci1 + hci2, C = hci3, so A and C cannot hear each other.
#
# Afterwards BlueZ's own l2test measures raw LE CoC throughput on the same hci0 -> hci1 link, with the same receive
# MTU the Pollen backend asks for, so the runner can print Pollen goodput / l2test goodput.
export POLLEN_VLAB_BLE_MEDIA=${POLLEN_VLAB_BLE_MEDIA:-2 2}
. /vlab/ble-env.sh || { echo "FAIL vlab-environment (btvirt + bluetoothd did not come up)"; exit 1; }

backends=${POLLEN_VLAB_BACKENDS:-bluez btleplug}
rc=0
if [[ " $backends " == *" bluez "* ]]; then
  /hostshare/pollen-hw-tests suite --backend bluez --adapters hci0,hci1,hci2,hci3 --relay-plan 0/1,2/3 \
    --json /out/conformance.json ${POLLEN_SUITE_FILTER:+--filter "$POLLEN_SUITE_FILTER"} 2> /out/suite.log
  rc=$?
fi

# btleplug is central-only: node 0 (hci0) dials node 1 (hci1); the suite skips what needs node 0 to advertise or
# use L2CAP. Older binaries without the backend do not list it in --version.
if [[ " $backends " == *" btleplug "* ]]; then
  if /hostshare/pollen-hw-tests --version | grep -q btleplug; then
    /hostshare/pollen-hw-tests suite --backend btleplug --adapters hci0,hci1 \
      --json /out/conformance-btleplug.json ${POLLEN_SUITE_FILTER:+--filter "$POLLEN_SUITE_FILTER"} \
      2> /out/suite-btleplug.log
    brc=$?
    [ "$rc" = 0 ] && rc=$brc
  else
    echo "vlab: this suite binary has no btleplug backend; skipping that run" >&2
  fi
fi

# l2test (the BlueZ run's L2CAP baseline): receiver on hci1, sender on hci0; -P is decimal; -g lingers so the last
# frames are not lost on close.
if [[ " $backends " != *" bluez "* ]]; then
  echo "L2TEST none"
  vlab_ble_collect
  exit $rc
fi
imtu=${POLLEN_L2CAP_IMTU:-4096}
btmgmt -i hci1 add-adv -c 1 > /dev/null
l2test -r -i hci1 -V le_public -P 157 -I "$imtu" -b 4096 > /out/l2test-server.log 2>&1 &
server=$!
sleep 1
timeout 120 l2test -s -i hci0 -V le_public -P 157 -I "$imtu" -O "$imtu" -b "$imtu" -N $((4 * 1024 * 1024 / imtu)) \
  -g 2000 "$VLAB_HCI1_ADDR" > /out/l2test-client.log 2>&1
sleep 2
kill $server 2> /dev/null
wait $server 2> /dev/null
# The receiver prints "<bytes> bytes in <secs> sec, <rate> kB/s" per burst; report the largest transfer.
awk '/bytes in/ { for (i = 1; i <= NF; i++) if ($i == "bytes") b = $(i-1); if (b > best) { best = b; line = $0 } }
     END { if (line != "") print "L2TEST " line; else print "L2TEST none" }' /out/l2test-server.log

vlab_ble_collect
exit $rc
