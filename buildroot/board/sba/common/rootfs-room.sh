#!/bin/bash
# Post-image check of both boards: the root filesystem image must leave ext4 room of its own at the
# first boot. The kernel holds back 2% of the blocks (at most 4096) from ordinary writes, and until
# systemd-growfs-root has grown the filesystem onto the disk the first boot's writes (/etc/machine-id
# first, by PID 1) come out of what is free beyond that. An image with less booted without a
# machine-id, and networkd's DHCP (its DUID comes from the machine-id) failed: "No medium found".
#   rootfs-room.sh ROOTFS_IMAGE      (HOST_DIR set, as buildroot sets it for post-image scripts)
set -euo pipefail

image=${1:?usage: rootfs-room.sh ROOTFS_IMAGE}
read -r count free bsize < <("$HOST_DIR/sbin/dumpe2fs" -h "$image" 2>/dev/null \
    | awk -F: '/^Block count/ {c = $2} /^Free blocks/ {f = $2} /^Block size/ {b = $2} END {print c + 0, f + 0, b + 0}')
[ "$bsize" -gt 0 ] || { echo "rootfs-room.sh: cannot read $image with dumpe2fs" >&2; exit 1; }
reserve=$(( count / 50 < 4096 ? count / 50 : 4096 ))
# 1 MiB beyond the reserve for the first boot's early writes (machine-id, random seed, journal).
need=$(( reserve + 1048576 / bsize ))
if [ "$free" -lt "$need" ]; then
    echo "rootfs-room.sh: $image has $(( free * bsize / 1024 )) KiB free, of which ext4 holds back" \
        "$(( reserve * bsize / 1024 )) KiB: raise BR2_TARGET_ROOTFS_EXT2_SIZE or trim the target" >&2
    exit 1
fi
