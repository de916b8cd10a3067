#!/bin/bash
# Lab self-test, run inside the guest:   hw-tests/vlab/run-guest.sh hw-tests/vlab/tests/ble-smoke.sh
# N btvirt LE controllers (POLLEN_VLAB_BLE_N, default 3 = a relay chain) under real bluetoothd; checks that each is
# powered with a real address, that LE advertising is seen by a scan, and that L2CAP LE CoC works between neighbours
# (hci0<-hci1, hci1<-hci2, ...). Note btvirt links every controller to every other one: "range" does not exist,
# a chain topology has to be enforced by the software under test.
export POLLEN_VLAB_BLE_N=${POLLEN_VLAB_BLE_N:-3}
pass=0; fail=0
ok()  { echo "PASS: $*"; pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }
. /vlab/ble-env.sh || { bad "ble-env (btvirt + bluetoothd)"; finish; }
N=$VLAB_BLE_N
addrs=$(for c in $(seq 0 $((N-1))); do vlab_addr hci$c; done | sort -u | grep -vc 00:00:00:00:00:00)
[ "$addrs" = "$N" ] && ok "controllers: $N distinct addresses" || bad "controllers: $addrs/$N distinct addresses"
[ "$(vlab_bluez_adapters)" = "$N" ] && ok "bluetoothd publishes $N adapters" || bad "bluetoothd adapters $(vlab_bluez_adapters)/$N"

# advertising + scanning through bluetoothd (btmgmt: connectable legacy advert; bluetoothctl: discovery)
btmgmt -i hci0 connectable on >/dev/null; btmgmt -i hci0 advertising on >/dev/null
t0=$(date +%s.%N)
timeout 25 bluetoothctl --timeout 20 -- select "$VLAB_HCI1_ADDR" scan on > /tmp/scan.log 2>&1 &
sp=$!
for i in $(seq 240); do grep -q "NEW.*Device $VLAB_HCI0_ADDR" /tmp/scan.log && break; sleep 0.1; done
if grep -q "NEW.*Device $VLAB_HCI0_ADDR" /tmp/scan.log; then ok "hci1 scan sees hci0 advertising in $(echo "$(date +%s.%N) $t0" | awk '{printf "%.1f", $1-$2}') s"
else bad "hci1 scan did not see hci0"; fi
kill $sp 2>/dev/null; wait $sp 2>/dev/null
btmgmt -i hci0 advertising off >/dev/null

# L2CAP LE CoC between chain neighbours with BlueZ's l2test (-P is decimal; -g so the last frames are not lost on close)
for c in $(seq 1 $((N-1))); do
  srv=hci$((c-1)); cli=hci$c; psm=$((150+c)); dst=$(vlab_addr $srv)
  btmgmt -i $srv connectable on >/dev/null; btmgmt -i $srv advertising on >/dev/null
  l2test -r -i $srv -V le_public -P $psm -b 2000 > /tmp/l2s-$c.log 2>&1 &
  lp=$!; sleep 1
  timeout 60 l2test -s -i $cli -V le_public -P $psm -b 200 -N 10 -g 1000 "$dst" > /tmp/l2c-$c.log 2>&1
  sleep 1; kill $lp 2>/dev/null; wait $lp 2>/dev/null
  btmgmt -i $srv advertising off >/dev/null
  if grep -q "2000 bytes in" /tmp/l2s-$c.log; then ok "L2CAP LE CoC $cli -> $srv (PSM $psm): $(grep -m1 'bytes in' /tmp/l2s-$c.log | sed 's/.*\]: //')"
  else bad "L2CAP LE CoC $cli -> $srv"; cat /tmp/l2c-$c.log /tmp/l2s-$c.log | head -8; fi
done
cp /tmp/*.log /out/ 2>/dev/null
vlab_ble_collect
finish
