#!/bin/bash
# Boot the lab guest under QEMU TCG, run one test script in it, power off; exit with the script's exit status.
# Usage: run-guest.sh GUEST_SCRIPT [TIMEOUT_S=600]
#   GUEST_SCRIPT   a script on the host; its folder is shared read-only at /lab and it runs as /lab/<name>
#                  (directly if executable, else with bash), cwd /out. hw-tests/vlab/guest/ is at /vlab.
# Env:
#   POLLEN_VLAB_SHARE  host folder shared read-only at /hostshare (test binaries; glibc matches, both bookworm)
#   POLLEN_VLAB_OUT    host folder shared read-write at /out (default $POLLEN_VLAB_CACHE/out/<script name>,
#                      emptied first); console.log and whatever the test writes end up there
#   POLLEN_VLAB_MEM=1024 POLLEN_VLAB_SMP=2 POLLEN_VLAB_ACCEL=tcg   POLLEN_VLAB_APPEND="extra kernel args"
#   POLLEN_*, RUST_LOG, RUST_BACKTRACE are forwarded into the guest's environment.
# Exit: the guest script's status; 124 on timeout; 125 when the guest died without reporting one.
# Works unattended (CI=true, no stdin, no tty). GUEST_SCRIPT "shell" gives an interactive bash (Ctrl-A X quits).
set -uo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
[ $# -ge 1 ] || { sed -n '2,15p' "$0"; exit 2; }
SCRIPT=$1; TMO=${2:-600}
"$VLAB_DIR/build-guest.sh" || exit 125          # about a second when cached
KV=$(vlab_kver)
if [ "$SCRIPT" = shell ]; then NAME=shell; LABD=$VLAB_DIR/guest; RUNARG=
else
  [ -f "$SCRIPT" ] || { vlab_log "no such guest script: $SCRIPT"; exit 2; }
  NAME=$(basename "$SCRIPT"); LABD=$(dirname "$(readlink -f "$SCRIPT")"); RUNARG="vlab.run=$NAME"
fi
OUT=${POLLEN_VLAB_OUT:-$POLLEN_VLAB_CACHE/out/${NAME%.*}}
[ -z "${POLLEN_VLAB_OUT:-}" ] && rm -rf "$OUT"
mkdir -p "$OUT"; rm -f "$OUT/vlab-exit-status"
SHARE=${POLLEN_VLAB_SHARE:-$POLLEN_VLAB_CACHE/empty}; mkdir -p "$SHARE"
# forward POLLEN_* / RUST_* to the guest as a sourced sh file (single-quoted, ' escaped)
for v in $(compgen -e | grep -E '^(POLLEN_|RUST_LOG$|RUST_BACKTRACE$)'); do
  val=${!v}; printf "export %s='%s'\n" "$v" "${val//\'/\'\\\'\'}"
done > "$OUT/.vlab-env"

case ${POLLEN_VLAB_ACCEL:-tcg} in
  kvm) ACC="-enable-kvm -cpu host";;
  *)   ACC="-accel tcg,thread=multi -cpu max";;   # TCG: /dev/kvm here is kvm_pvm, which cannot boot a stock kernel
esac
# 9p: security_model=none keeps host ownership (we are root); multidevs=remap avoids inode clashes on the root share
V="security_model=none"
if [ "$SCRIPT" = shell ]; then SERIAL="-serial mon:stdio"; STDIN=/dev/stdin
else SERIAL="-serial stdio -monitor none"; STDIN=/dev/null; fi   # no tty needed; stdin never read
vlab_log "booting $NAME (timeout ${TMO}s, out $OUT)"
T0=$EPOCHREALTIME
timeout -k 10 "$TMO" qemu-system-x86_64 $ACC -m "${POLLEN_VLAB_MEM:-1024}" -smp "${POLLEN_VLAB_SMP:-2}" \
  -nographic -display none $SERIAL -no-reboot -nic none \
  -kernel "$VLAB_KERNEL/boot/vmlinuz-$KV" -initrd "$VLAB_INITRD" \
  -virtfs local,path="$VLAB_ROOTFS",mount_tag=root,$V,readonly=on,multidevs=remap \
  -virtfs local,path="$VLAB_KERNEL/lib/modules",mount_tag=modules,$V,readonly=on \
  -virtfs local,path="$VLAB_DIR/guest",mount_tag=vlab,$V,readonly=on \
  -virtfs local,path="$LABD",mount_tag=lab,$V,readonly=on \
  -virtfs local,path="$OUT",mount_tag=out,$V \
  -virtfs local,path="$SHARE",mount_tag=hostshare,$V,readonly=on \
  -append "console=ttyS0 quiet loglevel=3 panic=-1 $RUNARG ${POLLEN_VLAB_APPEND:-}" < $STDIN 2>&1 |
  sed -u 's/\r//g; s/\x1b\[[0-9;?]*[a-zA-Z]//g; s/\x1bc//g' | tee "$OUT/console.log"
qrc=${PIPESTATUS[0]}
vlab_log "guest $NAME ran $(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $T0}")s (qemu rc $qrc)"
[ "$qrc" = 124 ] || [ "$qrc" = 137 ] && { vlab_log "TIMEOUT after ${TMO}s"; exit 124; }
rc=$(cat "$OUT/vlab-exit-status" 2>/dev/null) || { vlab_log "guest reported no exit status (crash?)"; exit 125; }
vlab_log "guest script exit status $rc"
exit "$rc"
