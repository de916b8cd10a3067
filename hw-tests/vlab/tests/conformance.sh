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
# First, BlueZ's own l2test measures raw LE CoC throughput on the same hci0 -> hci1 link, with the same receive MTU
# the Pollen backend asks for, so the runner can print Pollen goodput / l2test goodput.
export POLLEN_VLAB_BLE_MEDIA=${POLLEN_VLAB_BLE_MEDIA:-2 2}
. /vlab/ble-env.sh || { echo "FAIL vlab-environment (btvirt + bluetoothd did not come up)"; exit 1; }

# bluetoothd runs under ble-env's supervisor: a death is restarted and logged here, and the suite fails the scenario
# it happened in (never a silent retry).
export POLLEN_BLUETOOTHD_DEATHS=/out/bluetoothd-deaths.log

backends=${POLLEN_VLAB_BACKENDS:-bluez btleplug}

# l2test, the BlueZ run's L2CAP baseline: receiver on hci1, sender on hci0, the same receive MTU the Pollen backend
# asks for. It runs right before and right after the BlueZ suite (the runner uses the mean, so a host whose load
# changes moves both sides of the ratio alike), after dropping every link (a btvirt controller holds one LE link; a
# link left behind made it fail with "Operation now in progress"), and is retried once.
# -P is decimal; -g lingers so the last frames are not lost on close. The receiver prints "<bytes> bytes in <secs>
# sec, <rate> kB/s" (kB = 1024 bytes) once per -b bytes received or when the sender closes, so -b is the whole
# transfer: one line, timed from the receiver's first read to its last.
vlab_l2test() {
  local imtu=${POLLEN_L2CAP_IMTU:-4096} total=$((4 * 1024 * 1024)) server
  vlab_ble_disconnect_all
  btmgmt -i hci1 add-adv -c 1 > /dev/null
  l2test -r -i hci1 -V le_public -P 157 -I "$imtu" -b "$total" > /out/l2test-server.log 2>&1 &
  server=$!
  sleep 1
  timeout 120 l2test -s -i hci0 -V le_public -P 157 -I "$imtu" -O "$imtu" -b "$imtu" -N $((total / imtu)) \
    -g 2000 "$VLAB_HCI1_ADDR" > /out/l2test-client.log 2>&1
  sleep 2
  kill $server 2> /dev/null
  wait $server 2> /dev/null
  btmgmt -i hci1 rm-adv 1 > /dev/null
  vlab_ble_disconnect_all
  awk '/bytes in/ { for (i = 1; i <= NF; i++) if ($i == "bytes") b = $(i-1); if (b > best) { best = b; line = $0 } }
       END { if (line != "") print line }' /out/l2test-server.log
}
# Prints "L2TEST <when> <l2test's result line>", or "L2TEST <when> none".
vlab_l2test_report() {
  local l2
  l2=$(vlab_l2test)
  if [ -z "$l2" ]; then
    echo "vlab: l2test ($1) failed: $(tail -1 /out/l2test-client.log); retrying" >&2
    sleep 2
    l2=$(vlab_l2test)
  fi
  cp /out/l2test-server.log "/out/l2test-server-$1.log"
  echo "L2TEST $1 ${l2:-none}"
}

# A failed run's log goes to the console too: CI keeps only what the runner printed, not the guest's /out.
vlab_log_tail() {
  echo "vlab: the last 80 lines of $1:"
  tail -n 80 "$1" | cut -c1-400
}

main() {
  local rc=0 brc
  if [[ " $backends " == *" bluez "* ]]; then
    vlab_l2test_report before
    /hostshare/pollen-hw-tests suite --backend bluez --adapters hci0,hci1,hci2,hci3 --relay-plan 0/1,2/3 \
      --json /out/conformance.json ${POLLEN_SUITE_FILTER:+--filter "$POLLEN_SUITE_FILTER"} 2> /out/suite.log
    rc=$?
    [ "$rc" = 0 ] || vlab_log_tail /out/suite.log
    vlab_l2test_report after
    # The ratio's tight form: Pollen's L2CAP throughput case (4 MiB hci0 -> hci1, fresh nodes) right between two
    # l2test runs. Its FAIL counts like a scenario's.
    /hostshare/pollen-hw-tests throughput --backend bluez --adapters hci0,hci1 --filter l2cap --bytes 4194304 \
      --json /out/throughput-l2cap.json 2> /out/throughput.log || rc=1
    vlab_l2test_report post
  fi

  # btleplug is central-only: node 0 (hci0) dials node 1 (hci1); the suite skips what needs node 0 to advertise
  # or use L2CAP. Older binaries without the backend do not list it in --version.
  if [[ " $backends " == *" btleplug "* ]]; then
    if /hostshare/pollen-hw-tests --version | grep -q btleplug; then
      /hostshare/pollen-hw-tests suite --backend btleplug --adapters hci0,hci1 \
        --json /out/conformance-btleplug.json ${POLLEN_SUITE_FILTER:+--filter "$POLLEN_SUITE_FILTER"} \
        2> /out/suite-btleplug.log
      brc=$?
      [ "$brc" = 0 ] || vlab_log_tail /out/suite-btleplug.log
      [ "$rc" = 0 ] && rc=$brc
    else
      echo "vlab: this suite binary has no btleplug backend; skipping that run" >&2
    fi
  fi

  vlab_ble_collect
  if [ -s /out/bluetoothd-deaths.log ]; then
    echo "vlab: bluetoothd died during the run:"
    cat /out/bluetoothd-deaths.log
  fi
  return $rc
}

# One function call, so bash has parsed the whole script before it runs (an edit to this file during a run cannot
# derail it).
main; exit $?
