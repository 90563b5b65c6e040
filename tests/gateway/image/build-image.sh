#!/bin/bash
# Builds the gateway test VM image: Debian bookworm, its kernel, DAHDI built by DKMS for it,
# libpri's runtime, sipp (sip-tester, mediation's stand-in) and the test unit. Output in $1
# (default ./out): vmlinuz, initrd.img, rootfs.ext4. About 3 minutes; rebuild only when this
# directory changes.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$(mkdir -p "${1:-$here/out}" && cd "${1:-$here/out}" && pwd)"
root="$out/rootfs"
rm -rf "$root"

mmdebstrap --variant=minbase --mode=root \
    --include=systemd-sysv,udev,kmod,linux-image-amd64,linux-headers-amd64,dkms,dahdi-dkms,dahdi,libpri1.4,procps,sip-tester \
    --customize-hook="cp -r '$here/files/.' \"\$1/\"" \
    --customize-hook='chroot "$1" systemctl enable holdfast-gateway-test.service' \
    --customize-hook='echo holdfast-gw > "$1/etc/hostname"' \
    --customize-hook='printf "/dev/vda / ext4 rw 0 1\n" > "$1/etc/fstab"' \
    --customize-hook='chroot "$1" sh -c "ls /lib/modules/*/updates/dkms/dahdi.ko* >/dev/null"' \
    bookworm "$root"

cp "$root"/boot/vmlinuz-* "$out/vmlinuz"
cp "$root"/boot/initrd.img-* "$out/initrd.img"
rm -f "$out/rootfs.ext4"
mkfs.ext4 -q -L root -d "$root" "$out/rootfs.ext4" 2G
echo "$out"
