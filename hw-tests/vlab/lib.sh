# Shared settings for the Pollen virtual lab scripts (sourced, not run).
#   VLAB_DIR           this folder (scripts + guest/ helpers); may be read-only
#   POLLEN_VLAB_CACHE  where kernel, initramfs, guest root and default outputs live; outside the repo on purpose
#                      (a ~350 MB root folder must never end up in git or in cargo's view)
VLAB_DIR=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
POLLEN_VLAB_CACHE=${POLLEN_VLAB_CACHE:-/var/tmp/pollen-vlab}
VLAB_KERNEL=$POLLEN_VLAB_CACHE/kernel          # boot/vmlinuz + lib/modules/<kv> (pruned)
VLAB_INITRD=$POLLEN_VLAB_CACHE/initramfs.cpio.gz
VLAB_ROOTFS=$POLLEN_VLAB_CACHE/rootfs

vlab_log() { echo "vlab: $*" >&2; }

# Debian mirror for debootstrap: the bookworm/main one apt on this host already uses (override: POLLEN_VLAB_MIRROR).
vlab_mirror() {
  if [ -n "${POLLEN_VLAB_MIRROR:-}" ]; then echo "$POLLEN_VLAB_MIRROR"; return; fi
  apt-cache policy 2>/dev/null | awk '$2 ~ /^https?:/ && $3 == "bookworm/main" {print $2; exit}'
}

# Kernel version of the cached guest kernel (empty if not built).
vlab_kver() { ls "$VLAB_KERNEL/lib/modules" 2>/dev/null | head -1; }
