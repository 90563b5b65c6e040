#!/bin/bash
# Buildroot post-image step of the qemu board: the kernel also as an uncompressed ELF (vmlinux, without
# symbols, as the bzImage carries it), which qemu boots directly through the kernel's PVH entry
# (CONFIG_PVH): under TCG the bzImage's decompression is seconds before the kernel even starts.
# Runs from the buildroot directory, BUILD_DIR and BINARIES_DIR set.
set -euo pipefail

kernel=
for f in "$BUILD_DIR"/linux-*/vmlinux; do
    [ -f "$f" ] && kernel=$f
done
[ -n "$kernel" ] || { echo "post-image.sh: no vmlinux under $BUILD_DIR/linux-*" >&2; exit 1; }
objcopy -R .comment -S "$kernel" "$BINARIES_DIR/vmlinux"
"$(dirname "${BASH_SOURCE[0]}")/../common/rootfs-room.sh" "$BINARIES_DIR/rootfs.ext2"
