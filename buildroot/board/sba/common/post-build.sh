#!/bin/bash
# Buildroot post-build step (runs after the overlays are copied into the target): checks the appliance
# is complete and records what it was built from.
#   post-build.sh TARGET_DIR
set -euo pipefail

target=${1:?usage: post-build.sh TARGET_DIR (buildroot passes it)}
die() { echo "post-build.sh: $*" >&2; exit 1; }

for bin in sba-registrar sba-mediation sba-gateway sba-web sbactl; do
    [ -x "$target/usr/bin/$bin" ] || die "$bin is not in the target (BR2_PACKAGE_SBA_SERVICES)"
done
[ -f "$target/etc/sba/sba.toml" ] || die "/etc/sba/sba.toml is missing from the overlay"
find "$target/lib/modules" -name 'dahdi.ko*' | grep -q . || die "the DAHDI kernel modules are missing"

# dahdi-linux installs the Xorcom Astribank's firmware and perl init scripts, which only
# dahdi-tools' loaders (not in the image) use: 2.8 MB of the rootfs budget.
rm -rf "$target/usr/share/dahdi"

# Units for what this kernel and appliance lack (FUSE, configfs, DRM modules, debug and trace file
# systems, huge pages, POSIX message queues, network configuration from the kernel command line, which
# systemd-networkd's Also= enables whatever a preset says): each is an exec at boot, most of a second
# under TCG. The Debian VM image masks the same (image/build.sh).
# The same for what has nothing to do here: tmpfiles' /dev lines only set the modes of devices the
# appliance lacks (sound, KVM, FUSE, TUN), no udev rules come as credentials, and networkd keeps no
# state worth a disk write.
for unit in modprobe@configfs.service modprobe@drm.service modprobe@fuse.service dev-hugepages.mount \
    dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
    sys-fs-fuse-connections.mount systemd-network-generator.service \
    systemd-tmpfiles-setup-dev-early.service systemd-tmpfiles-setup-dev.service \
    systemd-udev-load-credentials.service systemd-networkd-persistent-storage.service; do
    ln -sfn /dev/null "$target/etc/systemd/system/$unit"
done
# The image is up to date: without these stamps its first boot runs the journal catalog update and
# systemd-update-done (ConditionNeedsUpdate=).
touch "$target/etc/.updated" "$target/var/.updated"

# A unit whose condition fails is skipped at boot: say which, testing each condition as systemd does
# (a path that must exist, a file that must be executable). Negated and triggering ones are not checked.
for unit in "$target"/etc/systemd/system/*.service; do
    [ -f "$unit" ] || continue
    while IFS='=' read -r key path; do
        case "$key" in
            ConditionPathExists) [ -e "$target$path" ] ;;
            ConditionFileIsExecutable) [ -f "$target$path" ] && [ -x "$target$path" ] ;;
        esac || echo "post-build.sh: note: $(basename "$unit") will be skipped ($key=$path is false in the image)" >&2
    done < <(grep -E '^Condition(PathExists|FileIsExecutable)=/' "$unit" || true)
done

# Every kernel option the board's config and the fragments ask for is in the kernel's configuration:
# kconfig silently drops an option whose dependencies are not met (a firewall match, a sandboxing feature).
if [ -n "${BR2_CONFIG:-}" ] && [ -n "${BUILD_DIR:-}" ]; then
    kconfig=
    for d in "$BUILD_DIR"/linux-*; do
        case "$d" in *linux-headers-*|*linux-firmware-*|*linux-tools-*) continue ;; esac
        [ -f "$d/.config" ] && kconfig="$d/.config"
    done
    [ -n "$kconfig" ] || die "no kernel configuration in $BUILD_DIR/linux-*"
    fragments=$(sed -n 's/^BR2_LINUX_KERNEL_\(CUSTOM_CONFIG_FILE\|CONFIG_FRAGMENT_FILES\)="\(.*\)"$/\2/p' "$BR2_CONFIG")
    for fragment in $fragments; do
        fragment=${fragment//\$(BR2_EXTERNAL_SBA_PATH)/${BR2_EXTERNAL_SBA_PATH:-}}
        while read -r option; do
            grep -qx "$option" "$kconfig" || die "$option (in $fragment) is not in the kernel's configuration: its dependencies are not met"
        done < <(grep -E '^CONFIG_[A-Z0-9_]+=[ym]$' "$fragment")
    done
fi

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)
{
    echo "builder=buildroot ${BR2_VERSION_FULL:-unknown}"
    echo "source=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)"
} > "$target/etc/sba/build-info"
