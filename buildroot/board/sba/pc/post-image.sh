#!/bin/bash
# Buildroot post-image step of the pc board: grub's configuration into the UEFI system partition,
# then disk.img (genimage.cfg). Runs from the buildroot directory, BINARIES_DIR set.
set -euo pipefail

board=$(dirname "${BASH_SOURCE[0]}")
"$board/../common/rootfs-room.sh" "$BINARIES_DIR/rootfs.ext2"
cp "$board/grub.cfg" "$BINARIES_DIR/efi-part/EFI/BOOT/grub.cfg"
support/scripts/genimage.sh -c "$board/genimage.cfg"
