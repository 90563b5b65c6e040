#!/bin/bash
# Builds the appliance VM image from Debian bookworm packages, the release binaries and image/overlay.
#
#   image/build.sh [--variant base|central] [--force]
#
# central is not the appliance: the central site of the WAN failover test (Kamailio and sqlite3, no
# Holdfast binaries, so it is reused whatever the binaries are).
#
# Outputs in image/build/<variant>/: vmlinuz, vmlinux (the same kernel uncompressed, booted through its PVH
# entry), initrd.img, rootfs.ext4 (raw), rootfs.qcow2, inputs.sha256.
# A build whose inputs (package list, binaries, overlay, this script, the VM test hook) did not change is
# reused. The first build downloads the .debs and keeps them as a local repository in image/build/debs/;
# later builds use only that repository and need no network. SBA_DEB_MIRROR overrides the Debian mirror
# of a first build (e.g. http://apt-cache.local/debian); SBA_BIN_DIR the binaries' directory (default
# target/release: sba-registrar, sba-mediation, sba-gateway, sba-web, sbactl, whichever exist).
set -euo pipefail
# Parsed whole before it runs: a build keeps going when this file is edited meanwhile.
{

die() { echo "build.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
variant=base
force=no
while [ $# -gt 0 ]; do
    case "$1" in
        --variant) variant=${2:?--variant needs base or central}; shift 2 ;;
        --force) force=yes; shift ;;
        *) die "unknown argument '$1' (usage: build.sh [--variant base|central] [--force])" ;;
    esac
done

# dbus: systemd-logind needs it, and without logind the ACPI power button (qemu system_powerdown,
# a hypervisor's shutdown) is ignored. iptables: the firewall (sba-firewall.service loads
# overlay/etc/sba/firewall*.rules with iptables-legacy-restore, as on the buildroot image).
packages=(systemd systemd-sysv udev dbus linux-image-amd64 tiny-initramfs kmod iproute2 iptables procps
    usr-is-merged)
case "$variant" in
    base) ;;
    # The WAN failover test's central site: the test starts Kamailio with its own config.
    central) packages+=(kamailio kamailio-sqlite-modules sqlite3) ;;
    *) die "unknown variant '$variant' (base or central)" ;;
esac
# The kernel modules a VM of ours loads (with what they need): Debian's kernel carries every driver.
# autofs4: systemd loads it at start for automount points.
modules=(virtio_pci virtio_blk virtio_net virtio_rng virtio_console qemu_fw_cfg ext4 button evdev sch_netem autofs4)

[ "$(id -u)" = 0 ] || die "must run as root (mmdebstrap builds the rootfs as a plain directory)"

need=()
command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
command -v qemu-img >/dev/null || need+=(qemu-utils)
command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
command -v dpkg-scanpackages >/dev/null || need+=(dpkg-dev)
command -v apt-ftparchive >/dev/null || need+=(apt-utils)
command -v flock >/dev/null || need+=(util-linux)
command -v strip >/dev/null || need+=(binutils)
command -v xz >/dev/null || need+=(xz-utils)
if [ ${#need[@]} -gt 0 ]; then
    echo "build.sh: installing ${need[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 \
        || die "could not install ${need[*]}"
fi

build="$here/build"
out="$build/$variant"
debs="$build/debs/$variant"
mkdir -p "$build"
# One build per variant at a time, across test processes.
exec 9>"$build/.lock-$variant"
flock 9

bindir=${SBA_BIN_DIR:-$repo/target/release}
binaries=()
for b in sba-registrar sba-mediation sba-gateway sba-web sbactl; do
    [ -x "$bindir/$b" ] && [ "$variant" != central ] && binaries+=("$bindir/$b")
done

pkglist=$(printf '%s\n' "${packages[@]}")
inputs=$(
    {
        echo "$variant"
        echo "$pkglist"
        sha256sum < "${BASH_SOURCE[0]}"
        # By content and name: the same binaries reached through another path are the same input.
        for b in "${binaries[@]}"; do echo "$(basename "$b") $(sha256sum < "$b")"; done
        for tree in "$here/overlay" "$here/vm"; do
            (cd "$tree" && find . \( -type f -o -type l \) -printf '%p %m %l\n' | LC_ALL=C sort)
            (cd "$tree" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
        done
    } | sha256sum | cut -d' ' -f1
)
if [ "$force" = no ] && [ -f "$out/inputs.sha256" ] && [ "$(cat "$out/inputs.sha256")" = "$inputs" ] \
    && [ -f "$out/rootfs.qcow2" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/vmlinux" ] && [ -f "$out/initrd.img" ]; then
    echo "build.sh: reusing $out (inputs unchanged)" >&2
    exit 0
fi

# A failed mmdebstrap can leave mounts (proc, the local repository) inside the rootfs directory:
# remove them before anything deletes that directory, or rm would empty the repository through them.
unmount_under() {
    findmnt -rn -o TARGET | { grep -F "$1/" || true; } | sort -r | while read -r m; do umount -l "$m"; done
}
trap 'unmount_under "$out"' EXIT

start=$(date +%s)
unmount_under "$out"
rm -rf "$out"
mkdir -p "$out"
root="$out/rootfs"

# The initramfs only has to find an ext4 root on virtio-blk: tiny-initramfs (in place of
# initramfs-tools, which the kernel package accepts instead) is one static program that loads the
# listed modules, mounts root= and starts systemd. initramfs-tools' shell scripts, even without udev,
# took 3-4 s of TCG between the kernel unpacking its 5.5 MB image and systemd's start; this one is
# 0.7 MB with the modules.
setup_hook='mkdir -p "$1/etc/tiny-initramfs"
printf "MICROCODE=no\nAUTO_MODULES=no\nINCLUDE_MODULES=virtio_pci,virtio_blk,ext4\n" > "$1/etc/tiny-initramfs/tiny-initramfs.conf"'

# apt satisfies init-system-helpers' "usrmerge | usr-is-merged" with usrmerge, a perl script: with
# usr-is-merged there, usrmerge goes, and with it 50 MB of perl (dpkg refuses if anything else needs
# one of them).
customize_hook='dpkg --root="$1" --purge usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl \
    perl perl-modules-5.36 libperl5.36 libgdbm-compat4 libgdbm6'

pkgstamp=$(echo "$pkglist" | sha256sum | cut -d' ' -f1)
include=$(IFS=,; echo "${packages[*]}")
if [ -f "$debs/Release" ] && [ "$(cat "$debs/packages.sha256" 2>/dev/null)" = "$pkgstamp" ]; then
    echo "build.sh: building $variant offline from $debs" >&2
    mmdebstrap --variant=minbase --include="$include" --setup-hook="$setup_hook" \
        --customize-hook="$customize_hook" --hook-dir=/usr/share/mmdebstrap/hooks/file-mirror-automount \
        bookworm "$root" "deb [trusted=yes] file://$debs ./" >&2 \
        || die "mmdebstrap failed (offline, from $debs)"
else
    mirror=${SBA_DEB_MIRROR:-http://deb.debian.org/debian}
    security=${SBA_DEB_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
    echo "build.sh: building $variant from $mirror (the .debs are kept for offline rebuilds)" >&2
    mmdebstrap --variant=minbase --include="$include" --setup-hook="$setup_hook" \
        --customize-hook="$customize_hook" --skip=essential/unlink,cleanup/apt/cache \
        bookworm "$root" \
        "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
        "deb $security bookworm-security main" >&2 \
        || die "mmdebstrap failed (online, from $mirror)"
    rm -rf "$debs"
    mkdir -p "$debs"
    mv "$root"/var/cache/apt/archives/*.deb "$debs/"
    (cd "$debs" && dpkg-scanpackages --multiversion . /dev/null > Packages 2>/dev/null \
        && apt-ftparchive -o APT::FTPArchive::Release::Suite=bookworm \
            -o APT::FTPArchive::Release::Codename=bookworm release . > ../Release.$variant \
        && mv ../Release.$variant Release) \
        || die "could not index the local repository $debs"
    echo "$pkgstamp" > "$debs/packages.sha256"
fi

# Kernel and initramfs boot directly from the host side.
kver=$(ls "$root/lib/modules" | sort -V | tail -n1)
[ -n "$kver" ] || die "no kernel in the rootfs"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$out/initrd.img"
# Debian's bzImage is xz-compressed, and under TCG the kernel's own decompressor took 9-13 s before
# the kernel's clock even started (measured at load 10-12). qemu boots the uncompressed ELF instead,
# through the PVH entry Debian's kernel has (CONFIG_PVH): the payload is an ELF already (setup
# sectors at 0x1f1, payload offset and length at 0x248; the uncompressed size follows the xz stream).
u8() { od -An -tu1 -j "$2" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$2" -N4 "$1" | tr -d ' '; }
setup_sects=$(u8 "$out/vmlinuz" $((0x1f1)))
[ "$setup_sects" != 0 ] || setup_sects=4
payload=$(( (setup_sects + 1) * 512 + $(u32 "$out/vmlinuz" $((0x248))) ))
dd if="$out/vmlinuz" of="$out/vmlinux.xz" iflag=skip_bytes,count_bytes skip="$payload" \
    count="$(u32 "$out/vmlinuz" $((0x24c)))" status=none
xz -dc --single-stream < "$out/vmlinux.xz" > "$out/vmlinux" || die "the kernel's payload is not xz: cannot boot it uncompressed"
rm -f "$out/vmlinux.xz"
# XEN_ELFNOTE_PHYS32_ENTRY (18): the PVH entry point qemu needs to boot an uncompressed kernel.
notes=$(readelf -n "$out/vmlinux")
grep -Eq '\(0x00000012\)|PHYS32_ENTRY' <<< "$notes" || die "kernel $kver has no PVH entry (CONFIG_PVH)"
# Only $modules and netfilter (the firewall's xtables) stay, with the modules they depend on: about
# 390 MiB less, and nothing for udev to load that a VM does not use.
moddir=/lib/modules/$kver/kernel
netfilter=$(cd "$root$moddir" && find net/netfilter net/ipv4/netfilter net/ipv6/netfilter -name '*.ko*' \
    -printf '%f\n' | sed 's/\.ko.*//')
# shellcheck disable=SC2086 # one module name per word
keep=$(chroot "$root" modprobe --set-version "$kver" --show-depends -a "${modules[@]}" $netfilter \
    | sed -n 's/^insmod \([^ ]*\).*/\1/p' | sort -u)
[ -n "$keep" ] || die "modprobe found none of ${modules[*]}"
(cd "$root" && find "${moddir#/}" -name '*.ko*' -printf '/%p\n') | grep -vxF "$keep" | sed "s|^|$root|" | xargs -r rm -f
chroot "$root" depmod "$kver"

cp -a --no-preserve=ownership "$here/overlay/." "$root/"
cp -a --no-preserve=ownership "$here/vm/." "$root/"
# Release builds carry debug info (the workspace profile): the image gets them stripped.
for b in "${binaries[@]}"; do install -m 0755 -s "$b" "$root/usr/bin/"; done
# What a VM without consoles, LVM, FUSE, loop devices, utmp or debug file systems does not need: they
# only slow the boot (the modules these modprobe@ units load are gone anyway; tmpfiles' /dev lines set
# the modes of static nodes, kmod's masked here).
# kamailio.service (central) would take port 5060 with Debian's sample config.
for unit in getty-static.service getty@tty1.service e2scrub_reap.service e2scrub_all.timer apt-daily.timer \
    apt-daily-upgrade.timer dpkg-db-backup.timer fstrim.timer systemd-pstore.service kamailio.service \
    modprobe@dm_mod.service modprobe@drm.service modprobe@fuse.service modprobe@loop.service \
    modprobe@configfs.service dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount systemd-update-utmp.service \
    systemd-update-utmp-runlevel.service systemd-network-generator.service proc-sys-fs-binfmt_misc.automount \
    systemd-binfmt.service kmod-static-nodes.service systemd-tmpfiles-setup-dev.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
done
# The appliance's network manager, as on buildroot's image: DHCP on every wired port
# (80-sba-dhcp.network) unless a site's (or a test's) .network file says otherwise.
chroot "$root" systemctl enable --quiet systemd-networkd.service
# udev's hardware database names vendors and models; nothing here needs that (22 MB).
rm -rf "$root/usr/lib/udev/hwdb.d" "$root/usr/lib/udev/hwdb.bin"
echo sba > "$root/etc/hostname"
# No fstab: the kernel mounts the root read-write (image/qemu's command line) and the filesystem's
# own default on errors is remount-ro (mkfs -e below), so systemd-remount-fs has nothing to do (and
# would take 0.8 s of TCG before local-fs.target).
rm -f "$root/etc/fstab"
ln -sf /dev/null "$root/etc/systemd/system/systemd-remount-fs.service"
# An empty /etc/modules (Debian's modules-load.d/modules.conf) still runs systemd-modules-load.
rm -f "$root/etc/modules-load.d/modules.conf"
# A test VM: root logs in on the serial console without a password.
chroot "$root" passwd -d root >/dev/null
rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/usr/share/doc" "$root/usr/share/man" \
    "$root/usr/share/locale" "$root/boot/"*

# The image is up to date: without these stamps every boot of it would run ldconfig and the hwdb and
# journal catalog updates first (ConditionNeedsUpdate=), seconds under TCG.
touch "$root/etc/.updated" "$root/var/.updated"

# Room for the journal (48 MiB cap), the SQLite database and ext4's own metadata.
used_mib=$(du -sm "$root" | cut -f1)
size_mib=$(( used_mib + used_mib / 4 + 128 ))
mkfs.ext4 -q -F -L sba-root -e remount-ro -d "$root" "$out/rootfs.ext4" "${size_mib}M" >&2 || die "mkfs.ext4 failed"
qemu-img convert -f raw -O qcow2 "$out/rootfs.ext4" "$out/rootfs.qcow2" || die "qemu-img convert failed"
rm -rf "$root"
echo "$inputs" > "$out/inputs.sha256"

echo "build.sh: $variant built in $(( $(date +%s) - start )) s: kernel $kver," \
    "rootfs $(du -m --apparent-size "$out/rootfs.ext4" | cut -f1) MiB raw" \
    "($(du -m "$out/rootfs.ext4" | cut -f1) MiB used), qcow2 $(du -m "$out/rootfs.qcow2" | cut -f1) MiB," \
    "binaries: ${binaries[*]:-none}" >&2
exit
}
