#!/bin/bash
# Host packages the Pollen virtual lab needs (Debian bookworm host). Idempotent; needs root.
#   qemu-system-x86 : the guest runs under QEMU TCG (the host kernel has no Bluetooth/Wi-Fi, and /dev/kvm here
#                     is kvm_pvm, which cannot boot a stock Debian kernel)
#   debootstrap     : builds the bookworm guest root folder
#   busybox-static  : the initramfs is a static busybox (no shared libs to copy)
#   cpio, kmod      : pack the initramfs; modprobe --show-depends / depmod on the guest kernel's modules
#   ca-certificates : debootstrap over https mirrors
#   debian-archive-keyring, xz-utils : debootstrap verifies the Release file and reads Packages.xz (only recommended
#                     or suggested by debootstrap, so a slim image installed with --no-install-recommends may lack them)
# Works unattended (CI=true, no tty, stdin closed): apt never prompts with DEBIAN_FRONTEND=noninteractive and -y.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "install-host.sh: needs root (apt-get install)" >&2; exit 1; }
PKGS="qemu-system-x86 debootstrap busybox-static cpio kmod ca-certificates debian-archive-keyring xz-utils"
need=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
export DEBIAN_FRONTEND=noninteractive
# refresh the package lists every time: build-guest.sh finds the Debian mirror through `apt-cache policy`
apt-get update -qq
if [ -n "$need" ]; then
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    $need >/dev/null
fi
echo "vlab host: $(qemu-system-x86_64 --version | head -1)"
