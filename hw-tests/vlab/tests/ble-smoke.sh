#!/bin/bash
# Lab self-test, run inside the guest:   hw-tests/vlab/run-guest.sh hw-tests/vlab/tests/ble-smoke.sh
# Builds the radio topology of a 3-node relay chain A - B - C out of two btvirt "media" (see ble-env.sh for why a
# node with two links needs two controllers): medium 0 = {hci0 = A, hci1 = B}, medium 1 = {hci2 = B, hci3 = C}.
# Checks, through real bluetoothd + kernel: 4 controllers powered with distinct addresses, LE scanning sees the
# advertiser on the same medium and not the one on the other medium, L2CAP LE CoC works on both links at the
# same time, and a connection across media fails. Prints PASS/FAIL lines and "N passed, N failed".
export POLLEN_VLAB_BLE_MEDIA=${POLLEN_VLAB_BLE_MEDIA:-2 2}
pass=0; fail=0
ok()  { echo "PASS: $*"; pass=$((pass+1)); }
bad() { echo "FAIL: $*"; fail=$((fail+1)); }
finish() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; exit $?; }
. /vlab/ble-env.sh || { bad "ble-env (btvirt + bluetoothd)"; finish; }
N=$VLAB_BLE_N; A=$VLAB_HCI0_ADDR; C=$VLAB_HCI3_ADDR
[ "$(for c in $(seq 0 $((N-1))); do vlab_addr hci$c; done | sort -u | grep -vc 00:00:00:00:00:00)" = "$N" ] &&
  ok "controllers: $N distinct addresses" || bad "controllers: addresses not distinct/real"
[ "$(vlab_bluez_adapters)" = "$N" ] && ok "bluetoothd publishes $N adapters" || bad "bluetoothd adapters $(vlab_bluez_adapters)/$N"

# Scan from B's first controller (hci1): A (hci0, same medium) must show up, C (hci3, other medium) must not.
# add-adv (MGMT Add Advertising), not "btmgmt advertising on": the latter is silently ignored while the
# controller has an LE connection.
btmgmt -i hci0 add-adv -c 1 >/dev/null; btmgmt -i hci3 add-adv -c 1 >/dev/null
timeout 20 btmgmt -i hci1 find -l > /tmp/find.log 2>&1
grep -qi "dev_found: $A" /tmp/find.log && ok "scan on hci1 finds A ($A) on its medium" || { bad "scan on hci1 did not find A"; head /tmp/find.log; }
grep -qi "dev_found: $C" /tmp/find.log && bad "scan on hci1 found C across media" || ok "scan on hci1 does not see C ($C) on the other medium"

# L2CAP LE CoC with BlueZ's l2test (-P is decimal; -g lingers so the last frames are not lost on close).
# l2 SERVER CLIENT PSM: SERVER listens, CLIENT connects and sends 10 x 200 bytes; both links stay up.
l2() {
  btmgmt -i $1 add-adv -c 1 >/dev/null   # connectable advert (needed unless a link exists already)
  l2test -r -i $1 -V le_public -P $3 -b 2000 > /tmp/l2s-$3.log 2>&1 &
  local lp=$!; sleep 1
  timeout 40 l2test -s -i $2 -V le_public -P $3 -b 200 -N 10 -g 1000 "$(vlab_addr $1)" > /tmp/l2c-$3.log 2>&1
  sleep 1; kill $lp 2>/dev/null; wait $lp 2>/dev/null
  btmgmt -i $1 rm-adv 1 >/dev/null 2>&1
  grep -q "2000 bytes in" /tmp/l2s-$3.log
}
l2 hci0 hci1 151 && ok "L2CAP CoC B(hci1) -> A(hci0)" || bad "L2CAP CoC B(hci1) -> A(hci0)"
l2 hci2 hci3 152 && ok "L2CAP CoC C(hci3) -> B(hci2) while B-A is up" || bad "L2CAP CoC C(hci3) -> B(hci2)"
l2 hci0 hci1 153 && ok "L2CAP CoC B -> A again over the existing link" || bad "L2CAP CoC B -> A again"
l2 hci3 hci1 154 && bad "L2CAP CoC across media (hci1 -> hci3) unexpectedly worked" || ok "L2CAP CoC across media fails as it should"
for c in $(seq 0 $((N-1))); do echo "hci$c links: $(hcitool -i hci$c con | tail -n +2 | tr '\n\t' '  ')"; done
cp /tmp/*.log /out/ 2>/dev/null
vlab_ble_collect
finish
