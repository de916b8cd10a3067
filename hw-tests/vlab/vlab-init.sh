#!/bin/sh
# PID 1 of the lab guest (the initramfs copies this into the throw-away root and switch_roots to it).
# Mounts the shares, runs the test script named on the kernel command line, records its exit status in
# /out/vlab-exit-status (the host's run-guest.sh turns that into its own exit status) and powers off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc; mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null; mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts; mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run; mkdir -p /run/dbus /run/lock /run/netns
mount -t tmpfs tmpfs /tmp
mkdir -p /lab /vlab /out /hostshare /var/lib/bluetooth /usr/lib/modules
O=trans=virtio,version=9p2000.L,msize=512000
mount -t 9p -o $O,ro modules /usr/lib/modules
mount -t 9p -o $O,ro vlab /vlab          # hw-tests/vlab/guest: helpers such as ble-env.sh
mount -t 9p -o $O,ro lab /lab            # the folder holding the test script
mount -t 9p -o $O out /out               # results; read-write
mount -t 9p -o $O,ro,cache=loose hostshare /hostshare 2>/dev/null   # test binaries built on the host
hostname pollen-vlab; ip link set lo up
RUN=; for a in $(cat /proc/cmdline); do case $a in vlab.run=*) RUN=${a#vlab.run=};; esac; done
# environment forwarded from the host (POLLEN_*, RUST_LOG, RUST_BACKTRACE), written by run-guest.sh
[ -f /out/.vlab-env ] && . /out/.vlab-env
echo "VLAB: guest ready at uptime $(cut -d' ' -f1 /proc/uptime)s, running ${RUN:-shell}"
cd /out
if [ -z "$RUN" ]; then
  setsid sh -c 'exec bash </dev/ttyS0 >/dev/ttyS0 2>&1'; rc=$?
elif [ -x "/lab/$RUN" ]; then "/lab/$RUN"; rc=$?        # honours the script's #! line
else bash "/lab/$RUN"; rc=$?
fi
echo "VLAB: done rc=$rc uptime $(cut -d' ' -f1 /proc/uptime)s"
echo $rc > /out/vlab-exit-status
sync
busybox poweroff -f 2>/dev/null || echo o > /proc/sysrq-trigger
