#!/bin/bash
# Build (once) and cache everything the lab guest boots from, in $POLLEN_VLAB_CACHE (default /var/tmp/pollen-vlab):
#   kernel/             Debian's stock kernel (bookworm-backports) + only the modules the lab needs
#   initramfs.cpio.gz   static busybox: load virtio/9p/overlay, mount the root share under a tmpfs overlay, switch_root
#   rootfs/             debootstrap'd bookworm folder, shared read-only into the guest over virtio-9p
# Every step is skipped when its output is current, so a cached re-run takes about a second.
# Env: POLLEN_VLAB_EXTRA_PKGS="a,b" extra guest packages (changes the root -> rebuilt); POLLEN_VLAB_REBUILD=1 forces all;
#      POLLEN_VLAB_KERNEL_SUITE=bookworm takes the kernel from another suite of the same mirror (the kernel is rebuilt).
# Needs root (debootstrap, file ownership in the root folder) and the host packages from install-host.sh.
set -euo pipefail
. "$(dirname "$(readlink -f "$0")")/lib.sh"
mkdir -p "$POLLEN_VLAB_CACHE"
[ "${POLLEN_VLAB_REBUILD:-0}" = 1 ] && rm -rf "$VLAB_KERNEL" "$VLAB_INITRD" "$VLAB_ROOTFS"

# ---------------------------------------------------------------------------------------------------------- kernel
# Why Debian's stock kernel: it ships hci_vhci (btvirt needs /dev/vhci) and mac80211_hwsim; the -cloud flavour does not.
# Why bookworm-backports' (6.12) and not bookworm's own (6.1): Linux 6.1 drops an LE Create Connection that fails at
# once (btvirt answers so when the target pauses advertising for a moment), and the stale connection then swallows
# every later connect to that device until the adapter is powered off (NOTES findings 16 and 22).
# The suite comes from a private apt state in the cache, so the host's apt sources stay as they are.
KSUITE=${POLLEN_VLAB_KERNEL_SUITE:-bookworm-backports}
# Top-level modules the guest loads; their dependencies are added by modprobe --show-depends.
KMODS="virtio_pci 9pnet_virtio 9p overlay hci_vhci bluetooth ecdh_generic cmac algif_hash algif_skcipher ecb
       mac80211_hwsim rfkill"
if [ "$(cat "$VLAB_KERNEL/.done" 2>/dev/null)" != "$KSUITE" ]; then
  MIRROR=$(vlab_mirror); [ -n "$MIRROR" ] || { vlab_log "no bookworm mirror in apt's sources (set POLLEN_VLAB_MIRROR)"; exit 1; }
  A=$POLLEN_VLAB_CACHE/apt; mkdir -p "$A/lists/partial" "$A/cache"
  echo "deb $MIRROR $KSUITE main" > "$A/sources.list"
  APT=(-o "Dir::Etc::sourcelist=$A/sources.list" -o Dir::Etc::sourceparts=- -o "Dir::State::Lists=$A/lists"
       -o "Dir::Cache=$A/cache" -o APT::Sandbox::User=root)
  apt-get "${APT[@]}" update -qq || { vlab_log "apt-get update of $MIRROR $KSUITE failed"; exit 1; }
  PKG=$(apt-cache "${APT[@]}" depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$PKG" ] || { vlab_log "$MIRROR $KSUITE has no linux-image-amd64"; exit 1; }
  vlab_log "kernel: downloading $PKG from $KSUITE"
  D=$POLLEN_VLAB_CACHE/debs; mkdir -p "$D"
  ls "$D/${PKG}"_*.deb >/dev/null 2>&1 || (cd "$D" && apt-get "${APT[@]}" download -q "$PKG")
  T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
  dpkg -x "$D/${PKG}"_*.deb "$T"
  KV=$(ls "$T/lib/modules"); depmod -b "$T" "$KV"   # the .deb ships no modules.dep; needed for --show-depends
  rm -rf "$VLAB_KERNEL"; mkdir -p "$VLAB_KERNEL/boot" "$VLAB_KERNEL/lib/modules/$KV"
  cp "$T/boot/vmlinuz-$KV" "$T/boot/config-$KV" "$VLAB_KERNEL/boot/"
  for m in $KMODS; do modprobe -d "$T" -S "$KV" --show-depends "$m"; done | awk '$1=="insmod"{print $2}' | sort -u |
    while read -r ko; do rel=${ko#"$T"/}; mkdir -p "$VLAB_KERNEL/$(dirname "$rel")"; cp "$ko" "$VLAB_KERNEL/$rel"; done
  cp "$T/lib/modules/$KV"/modules.{order,builtin,builtin.modinfo} "$VLAB_KERNEL/lib/modules/$KV/" 2>/dev/null || true
  depmod -b "$VLAB_KERNEL" "$KV"
  rm -rf "$T"; trap - EXIT
  grep -qE '^CONFIG_BT_HCIVHCI=m' "$VLAB_KERNEL/boot/config-$KV" || { vlab_log "kernel $KV has no hci_vhci"; exit 1; }
  echo "$KSUITE" > "$VLAB_KERNEL/.done"
  vlab_log "kernel: $KV, $(find "$VLAB_KERNEL" -name '*.ko*' | wc -l) modules, $(du -sh "$VLAB_KERNEL" | cut -f1)"
fi
KV=$(vlab_kver)

# ------------------------------------------------------------------------------------------------------- initramfs
# Rebuilt when this script, the PID-1 script or the kernel changes (stamp = hash of those).
STAMP=$(cat "$0" "$VLAB_DIR/vlab-init.sh" <(echo "$KV") | sha256sum | cut -c1-16)
if [ "$(cat "$VLAB_INITRD.stamp" 2>/dev/null)" != "$STAMP" ] || [ ! -f "$VLAB_INITRD" ]; then
  W=$(mktemp -d)
  mkdir -p "$W"/{bin,dev,proc,sys,newroot,lower,rw,mods}
  cp /bin/busybox "$W/bin/busybox"                   # busybox-static: no libraries to copy
  cp "$VLAB_DIR/vlab-init.sh" "$W/vlab-init.sh"      # PID 1 of the real root, copied into the overlay at boot
  # modules needed before the root is mounted, in dependency order (busybox insmod does not resolve deps)
  for m in virtio_pci 9pnet_virtio 9p overlay; do modprobe -d "$VLAB_KERNEL" -S "$KV" --show-depends "$m"; done |
    awk '$1=="insmod" && !seen[$2]++ {print $2}' > "$W/order.txt"
  n=0; : > "$W/mods/order"
  while read -r ko; do n=$((n+1)); f=$(printf '%02d-%s' $n "$(basename "$ko")"); cp "$ko" "$W/mods/$f"; echo "$f" >> "$W/mods/order"; done < "$W/order.txt"
  rm "$W/order.txt"
  cat > "$W/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for f in $(cat /mods/order); do insmod /mods/$f 2>/dev/null; done
grep -qw vlab.shell=1 /proc/cmdline && exec sh          # debug: stop in the initramfs
# msize: bigger 9p messages make reading binaries from the share much faster; cache=loose is fine for a read-only root
if ! mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose root /lower; then
  echo "VLAB: 9p root mount failed"; exec sh
fi
# throw-away writable root: overlay of a tmpfs upper over the read-only share, so every boot starts clean
mount -t tmpfs -o size=50% tmpfs /rw && mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || { echo "VLAB: overlay failed"; exec sh; }
cp /vlab-init.sh /newroot/sbin/pollen-vlab-init && chmod 755 /newroot/sbin/pollen-vlab-init
umount /proc /sys; mount --move /dev /newroot/dev 2>/dev/null || true
exec switch_root /newroot /sbin/pollen-vlab-init
INIT
  chmod +x "$W/init"
  (cd "$W" && find . | cpio -o -H newc --quiet | gzip -1) > "$VLAB_INITRD.tmp"
  mv "$VLAB_INITRD.tmp" "$VLAB_INITRD"; echo "$STAMP" > "$VLAB_INITRD.stamp"
  rm -rf "$W"
  vlab_log "initramfs: $(du -h "$VLAB_INITRD" | cut -f1)"
fi

# ---------------------------------------------------------------------------------------------------------- rootfs
# bluez: bluetoothd, btmgmt, btmon, hciconfig; bluez-test-tools: btvirt, l2test, *-tester; busybox: poweroff -f;
# wpasupplicant+iw: Wi-Fi Direct over mac80211_hwsim; python3-dbus and strace for debugging in the guest.
PKGS=bluez,bluez-test-tools,dbus,wpasupplicant,iw,iproute2,iputils-ping,kmod,procps,psmisc,busybox,python3,python3-dbus,strace
[ -n "${POLLEN_VLAB_EXTRA_PKGS:-}" ] && PKGS="$PKGS,$POLLEN_VLAB_EXTRA_PKGS"
if [ "$(cat "$VLAB_ROOTFS/.vlab-pkgs" 2>/dev/null)" != "$PKGS" ] || [ ! -x "$VLAB_ROOTFS/usr/bin/btvirt" ]; then
  MIRROR=$(vlab_mirror); [ -n "$MIRROR" ] || { vlab_log "no bookworm mirror in apt's sources (set POLLEN_VLAB_MIRROR)"; exit 1; }
  vlab_log "rootfs: debootstrap bookworm from $MIRROR (a few minutes; log in $POLLEN_VLAB_CACHE/debootstrap.log)"
  rm -rf "$VLAB_ROOTFS"
  if ! debootstrap --variant=minbase --include="$PKGS" bookworm "$VLAB_ROOTFS" "$MIRROR" > "$POLLEN_VLAB_CACHE/debootstrap.log" 2>&1; then
    tail -20 "$POLLEN_VLAB_CACHE/debootstrap.log"; rm -rf "$VLAB_ROOTFS"; exit 1
  fi
  rm -rf "$VLAB_ROOTFS"/var/cache/apt/archives/*.deb
  # dbus-daemon refuses to start without a machine id; the root share is read-only, so make it here once
  chroot "$VLAB_ROOTFS" dbus-uuidgen --ensure=/etc/machine-id
  echo pollen-vlab > "$VLAB_ROOTFS/etc/hostname"
  echo "$PKGS" > "$VLAB_ROOTFS/.vlab-pkgs"
  vlab_log "rootfs: $(du -sh "$VLAB_ROOTFS" | cut -f1), bluez $(chroot "$VLAB_ROOTFS" dpkg-query -W -f='${Version}' bluez)"
fi
vlab_log "guest ready in $POLLEN_VLAB_CACHE (kernel $KV)"
