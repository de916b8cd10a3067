# Sourced by guest test scripts (bash):   . /vlab/ble-env.sh || exit 1
# Brings up real BlueZ on virtual LE controllers inside the lab guest:
#   btvirt (BlueZ's controller emulator on /dev/vhci) -> N linked controllers hci0..hci(N-1)
#   dbus-daemon --system, bluetoothd, every controller powered on through bluetoothd's D-Bus API.
# Env (all optional):
#   POLLEN_VLAB_BLE_N=2            number of controllers, all on one medium (btvirt -l2; -l3 for three)
#   POLLEN_VLAB_BLE_MEDIA="2 2"    instead: one btvirt per medium, N controllers each; controllers only hear and
#                                  reach the ones on their own medium (hci0,hci1 | hci2,hci3). See the gotcha below.
#   POLLEN_VLAB_BLE_TYPE=le        le   = btvirt -L: LE-only, BT 4.x feature set (legacy 31-byte adverts, 1M PHY only)
#                                  dual = btvirt default: BR/EDR+LE 5.2 (extended advertising, 2M/Coded PHY bits)
#   POLLEN_VLAB_BT_EXPERIMENTAL=0  1 = bluetoothd -E (experimental D-Bus interfaces; not needed for GATT/adv/L2CAP)
#   POLLEN_VLAB_BT_DEBUG=0         1 = bluetoothd -d (verbose; costs a lot of CPU under TCG)
#   POLLEN_VLAB_BTMON=0            1 = record HCI traffic to /out/ble.btsnoop, ble-2.btsnoop, ... (btmon 5.66 -w
#                                  segfaults after a minute or so of traffic; it is restarted into the next file);
#                                  read them with btsnoop-summary.py on the host; costs CPU
#   POLLEN_VLAB_BT_KDEBUG=0        1 = the kernel's Bluetooth connection-setup debug messages (dynamic debug:
#                                  hci_sync.c and the LE connect/advert paths) go to dmesg, collected in /out/dmesg.txt;
#                                  pair it with POLLEN_VLAB_APPEND=log_buf_len=32M
#   POLLEN_VLAB_BLE_NOSTART=0      1 = only define the functions, start nothing
#   POLLEN_VLAB_BEACONS=1          0 = no second advertising instance per controller (see vlab_ble_beacons)
#   POLLEN_VLAB_GATT_CHANNELS=1    ATT bearers per link ([GATT] Channels in main.conf). BlueZ's default (3, EATT)
#                                  reorders GATT values and truncates writes routed over an EATT bearer with a smaller
#                                  MTU; Pollen's link session tolerates the reordering but must refuse truncated data,
#                                  so GATT links need one bearer. Set 3 to see the EATT behaviour.
# After success: VLAB_BLE_N, VLAB_HCI<i>_ADDR (e.g. VLAB_HCI0_ADDR=00:AA:01:00:00:00; btvirt derives it from the
# kernel's hci index, so it is unique across btvirt processes) and VLAB_HCI<i>_MEDIUM are exported.
# GOTCHA (BlueZ 5.66 and upstream master): btvirt's emulated controller gets ACL handles wrong as soon as one controller
# holds two LE connections (the peripheral is told the central's handle; ACL data keeps the sender's handle), so the
# second link of a node silently breaks. Give every node at most ONE connection per controller: a relay node B in
# A-B-C uses two controllers, e.g. POLLEN_VLAB_BLE_MEDIA="2 2" with A=hci0, B=hci1+hci2, C=hci3.
# Logs: /out/bluetoothd.log, /out/btvirt.log, /out/bluetoothd-deaths.log (only when bluetoothd died; it is
# restarted, see vlab_bluetoothd_supervise); vlab_ble_collect copies dmesg etc. to /out.

vlab_t() { cut -d' ' -f1 /proc/uptime; }
vlab_addr() { timeout 5 hciconfig "$1" 2>/dev/null | awk '/BD Address/{print $3}'; }

# Number of adapters bluetoothd has published on D-Bus.
vlab_bluez_adapters() {
  dbus-send --system --print-reply --dest=org.bluez / org.freedesktop.DBus.ObjectManager.GetManagedObjects 2>/dev/null |
    grep -c '"org.bluez.Adapter1"'
}

# Start one btvirt per "medium" and wait until all their controllers have a real address.
# Args: controller count of each medium, e.g. "2 2". Controllers are numbered in order (hci0, hci1 | hci2, hci3).
# Gotcha: under TCG (worse with a busy host) the kernel's first HCI_Reset to a new btvirt controller can miss its
# 2 s command timeout ("hciN: Opcode 0x0c03 failed: -110"); the controller then stays DOWN with address
# 00:00:00:00:00:00, and the kernel never announces it to bluetoothd (mgmt). "hciconfig hciN up" does fix the address
# but the adapter stays invisible to bluetoothd, so: kill this btvirt, wait for its controllers to go away, restart.
# (Reproduce by SIGSTOPping btvirt for 4 s right after it starts.)
vlab_ble_btvirt() {
  local first=0 m=0 k try i ok a c pid opts
  VLAB_BTVIRT_PIDS=
  for k in "$@"; do
    opts="-l$k"; [ "${POLLEN_VLAB_BLE_TYPE:-le}" = le ] && opts="-L -l$k"
    ok=0
    for try in 1 2 3; do
      btvirt $opts >> /out/btvirt.log 2>&1 &
      pid=$!
      for i in $(seq 150); do
        ok=1
        for c in $(seq $first $((first+k-1))); do
          a=$(vlab_addr hci$c)
          [ -z "$a" ] && ok=0                                  # not registered yet
          [ "$a" = 00:00:00:00:00:00 ] && ok=zero              # registered, but its init failed
        done
        [ $ok = 1 ] && break
        [ $ok = zero ] && [ $i -ge 30 ] && break               # the kernel gave up on it (2 s timeout): restart
        sleep 0.1
      done
      [ $ok = 1 ] && break
      echo "vlab: btvirt medium $m try $try: controllers not ready ($ok), restarting btvirt: $(dmesg | grep -i hci | tail -1)" >&2
      kill $pid; wait $pid 2>/dev/null
      for i in $(seq 50); do [ -z "$(vlab_addr hci$first)" ] && break; sleep 0.1; done   # wait for the unregister
    done
    [ $ok = 1 ] || return 1
    VLAB_BTVIRT_PIDS="$VLAB_BTVIRT_PIDS $pid"
    for c in $(seq $first $((first+k-1))); do export VLAB_HCI${c}_MEDIUM=$m; done
    first=$((first+k)); m=$((m+1))
  done
}

# Turns on the kernel's debug messages for LE connection setup (see POLLEN_VLAB_BT_KDEBUG).
vlab_bt_kdebug() {
  local f
  mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug || return 0
  echo 'file hci_sync.c +pflt' > /sys/kernel/debug/dynamic_debug/control
  for f in hci_conn_add hci_conn_del hci_connect_le_scan hci_connect_le hci_conn_failed hci_le_conn_failed \
           hci_abort_conn hci_conn_timeout le_conn_timeout le_conn_complete_evt hci_le_adv_report_evt \
           hci_disconn_complete_evt check_pending_le_conn l2cap_chan_connect; do
    echo "func $f +pflt" > /sys/kernel/debug/dynamic_debug/control 2>/dev/null
  done
}

# Records HCI traffic until killed; a btmon that crashed is restarted into the next file (ble-2.btsnoop, ...).
vlab_btmon_respawn() {
  local n=1 f=/out/ble.btsnoop child
  trap 'kill $child 2>/dev/null; exit 0' TERM
  while :; do
    btmon -w "$f" > /dev/null 2>&1 &
    child=$!
    wait $child
    echo "vlab: t=$(vlab_t) btmon stopped ($?) writing $f; restarting" >&2
    n=$((n+1)); f=/out/ble-$n.btsnoop
  done
}

vlab_ble_up() {
  local media=${POLLEN_VLAB_BLE_MEDIA:-${POLLEN_VLAB_BLE_N:-2}} n=0 k i c
  for k in $media; do n=$((n+k)); done
  # Preload what the first HCI power-on would request_module() (ECDH + CMAC for SMP, AF_ALG), so the emulated
  # controller's HCI_Reset is not answered late while the kernel loads modules (the zero-address gotcha).
  modprobe -a hci_vhci ecdh_generic cmac algif_hash algif_skcipher ecb || { echo "vlab: modprobe failed" >&2; return 1; }
  [ "${POLLEN_VLAB_BT_KDEBUG:-0}" = 1 ] && vlab_bt_kdebug
  [ -S /run/dbus/system_bus_socket ] || dbus-daemon --system --fork || return 1
  vlab_ble_btvirt $media || { echo "vlab: btvirt controllers never came up" >&2; return 1; }
  echo "vlab: t=$(vlab_t) btvirt: $n controllers (${POLLEN_VLAB_BLE_TYPE:-le}), media: $media" >&2
  [ "${POLLEN_VLAB_BTMON:-0}" = 1 ] && { vlab_btmon_respawn & VLAB_BTMON_PID=$!; }
  export VLAB_BLE_N=$n
  printf '[GATT]\nChannels = %s\n' "${POLLEN_VLAB_GATT_CHANNELS:-1}" > /tmp/pollen-main.conf
  vlab_bluetoothd_start /tmp/pollen-main.conf || return 1
  for c in $(seq 0 $((n-1))); do export VLAB_HCI${c}_ADDR=$(vlab_addr hci$c); done
  echo "vlab: t=$(vlab_t) bluetoothd up, powered: $(for c in $(seq 0 $((n-1))); do printf 'hci%s=%s ' $c "$(vlab_addr hci$c)"; done)" >&2
}

# (Re)start bluetoothd, optionally with a main.conf (e.g. "[GATT]\nChannels = 1" turns EATT off), wait until it
# publishes every adapter and power them all on. Usage: vlab_bluetoothd_start [main.conf]
# bluetoothd runs under a supervisor (vlab_bluetoothd_supervise): BlueZ 5.66 has crashed in the lab (SIGSEGV), and
# without a restart every later test step fails in setup with org.freedesktop.DBus.Error.Spawn.ChildExited.
vlab_bluetoothd_start() {
  local args="-n"
  vlab_bluetoothd_stop
  [ "${POLLEN_VLAB_BT_EXPERIMENTAL:-0}" = 1 ] && args="$args -E"
  [ "${POLLEN_VLAB_BT_DEBUG:-0}" = 1 ] && args="$args -d"
  [ -n "${1:-}" ] && args="$args -f $1"
  rm -f /run/vlab-bluetoothd.stop /run/vlab-bluetoothd.pid
  vlab_bluetoothd_supervise "$args" &
  VLAB_BLUETOOTHD_SUP=$!
  vlab_bluetoothd_power
}

# Stops the supervised bluetoothd (no restart, no death recorded).
vlab_bluetoothd_stop() {
  [ -n "${VLAB_BLUETOOTHD_SUP:-}" ] || return 0
  touch /run/vlab-bluetoothd.stop
  kill "$(cat /run/vlab-bluetoothd.pid 2>/dev/null)" 2>/dev/null
  wait "$VLAB_BLUETOOTHD_SUP" 2>/dev/null
  VLAB_BLUETOOTHD_SUP=
}

# Runs bluetoothd ARGS until vlab_bluetoothd_stop. A death is never hidden: it is announced on stderr (the console)
# and appended to /out/bluetoothd-deaths.log (uptime, pid, exit status or signal), which the suite reads to fail the
# scenario it happened in (POLLEN_BLUETOOTHD_DEATHS); then bluetoothd starts again with every adapter powered.
vlab_bluetoothd_supervise() {
  local args=$1 pid rc why
  while :; do
    /usr/libexec/bluetooth/bluetoothd $args >> /out/bluetoothd.log 2>&1 &
    pid=$!
    echo "$pid" > /run/vlab-bluetoothd.pid
    wait "$pid"; rc=$?
    [ -f /run/vlab-bluetoothd.stop ] && return 0
    why="exit status $rc"
    [ "$rc" -gt 128 ] && why="killed by signal $((rc - 128))$([ "$rc" = 139 ] && echo ' (SIGSEGV)')"
    echo "vlab: t=$(vlab_t) bluetoothd pid $pid died ($why); restarting it" | tee -a /out/bluetoothd-deaths.log >&2
    echo "=== vlab: t=$(vlab_t) bluetoothd pid $pid died ($why) ===" >> /out/bluetoothd.log
    sleep 1
    ( vlab_bluetoothd_power || echo "vlab: bluetoothd did not come back with every adapter" >&2 ) &
  done
}

# Waits until bluetoothd publishes every adapter and powers them all on.
vlab_bluetoothd_power() {
  local n=${VLAB_BLE_N:-${POLLEN_VLAB_BLE_N:-2}} i c
  for i in $(seq 100); do [ "$(vlab_bluez_adapters)" -ge "$n" ] && break; sleep 0.1; done
  [ "$(vlab_bluez_adapters)" -ge "$n" ] || { echo "vlab: bluetoothd published $(vlab_bluez_adapters)/$n adapters" >&2; return 1; }
  # power on through bluetoothd (not btmgmt) so its view of the adapter state is right
  for c in $(seq 0 $((n-1))); do
    dbus-send --system --print-reply --dest=org.bluez /org/bluez/hci$c org.freedesktop.DBus.Properties.Set \
      string:org.bluez.Adapter1 string:Powered variant:boolean:true > /dev/null || return 1
  done
  for c in $(seq 0 $((n-1))); do
    for i in $(seq 50); do hciconfig hci$c | grep -q 'UP RUNNING' && break; sleep 0.1; done
    hciconfig hci$c | grep -q 'UP RUNNING' || { echo "vlab: hci$c not powered" >&2; return 1; }
  done
  vlab_ble_beacons
}

# btvirt delivers an advertisement only when the advertiser enables advertising or the scanner enables scanning,
# not once per advertising interval as a radio does; and the kernel drops the report a scan-enable brings when it
# lands before its discovery state turns to "finding", which under TCG it nearly always does. A node that starts
# scanning after its peer started advertising would never see the peer (NOTES.md, finding 20). So every controller
# carries a second advertising instance, empty and connectable: with two instances the kernel re-enables advertising
# every 2 s to switch between them, and each switch reaches every scanner on the medium, as a radio's adverts would.
# Instance 5 is the last one bluetoothd hands out (5 instances on these controllers); bluetoothd removes every
# instance when it starts, so a restart re-adds it here. POLLEN_VLAB_BEACONS=0 leaves the beacons out.
vlab_ble_beacons() {
  local n=${VLAB_BLE_N:-${POLLEN_VLAB_BLE_N:-2}} c
  [ "${POLLEN_VLAB_BEACONS:-1}" = 1 ] || return 0
  for c in $(seq 0 $((n-1))); do
    btmgmt -i hci$c add-adv -c 5 > /dev/null || { echo "vlab: no beacon instance on hci$c" >&2; return 1; }
  done
}

# Drop every LE link of every controller (bluetoothd keeps links up through its own ATT channels after the
# test's sockets close; a later test step then starts from an unexpected state).
vlab_ble_disconnect_all() {
  local c h
  for c in $(seq 0 $((${VLAB_BLE_N:-2}-1))); do
    for h in $(hcitool -i hci$c con 2>/dev/null | awk '/LE/{for(i=1;i<=NF;i++) if($i=="handle") print $(i+1)}'); do
      hcitool -i hci$c ledc "$h" 2>/dev/null
    done
  done
  for c in $(seq 50); do [ -z "$(for c in $(seq 0 $((${VLAB_BLE_N:-2}-1))); do hcitool -i hci$c con | grep LE; done)" ] && break; sleep 0.1; done
}

vlab_ble_collect() {   # copy what helps a post-mortem into /out
  dmesg > /out/dmesg.txt 2>&1
  for c in $(seq 0 $((${VLAB_BLE_N:-2}-1))); do btmgmt -i hci$c info; done > /out/btmgmt-info.txt 2>&1
  [ -n "${VLAB_BTMON_PID:-}" ] && { kill "$VLAB_BTMON_PID" 2>/dev/null; sleep 0.2; }
  return 0
}

if [ "${POLLEN_VLAB_BLE_NOSTART:-0}" != 1 ]; then vlab_ble_up; fi
