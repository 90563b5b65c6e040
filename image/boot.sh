#!/bin/bash
# Boots an image built by image/build.sh under qemu and stays in the foreground until the VM stops.
#
#   image/boot.sh [--variant base|dahdi] --serial2 FILE [--console FILE] [--qmp SOCKET]
#                 [--fw-cfg NAME=FILE]... [--disk FILE] [--mem MIB] [--smp N] [--append ARGS]
#                 [-- QEMU_ARGS...]
#
# Kernel and initramfs boot directly. The disk is a throwaway qcow2 overlay of the image (qemu
# -snapshot: it survives a QMP system_reset but not qemu's exit); --disk FILE keeps the overlay in FILE
# instead, created on first use, so that a test can stop qemu and boot the same disk again.
# ttyS0 (--console) gets the kernel and systemd console, ttyS1 (--serial2) the test's output.
# Networks are the caller's: pass -netdev/-device pairs after `--`. A virtio RNG feeds the guest's
# entropy pool: without it the first getrandom() of a service blocks for many seconds under TCG.
# Acceleration: KVM when it really boots a kernel here (probed once per host boot), TCG otherwise;
# SBA_ACCEL=kvm|tcg forces one.
set -euo pipefail

die() { echo "boot.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
variant=base
serial2=
console=/dev/null
qmp=
disk=
mem=512
smp=2
append=
fw_cfg=()
while [ $# -gt 0 ]; do
    case "$1" in
        --variant) variant=${2:?}; shift 2 ;;
        --serial2) serial2=${2:?}; shift 2 ;;
        --console) console=${2:?}; shift 2 ;;
        --qmp) qmp=${2:?}; shift 2 ;;
        --fw-cfg) fw_cfg+=(-fw_cfg "name=${2%%=*},file=${2#*=}"); shift 2 ;;
        --disk) disk=${2:?}; shift 2 ;;
        --mem) mem=${2:?}; shift 2 ;;
        --smp) smp=${2:?}; shift 2 ;;
        --append) append=${2:?}; shift 2 ;;
        --) shift; break ;;
        *) die "unknown argument '$1' (see the usage at the top of image/boot.sh)" ;;
    esac
done
[ -n "$serial2" ] || die "--serial2 FILE is required"

image="$here/build/$variant"
for f in vmlinuz initrd.img rootfs.qcow2; do
    [ -f "$image/$f" ] || die "$image/$f is missing: run image/build.sh --variant $variant first"
done
command -v qemu-system-x86_64 >/dev/null || {
    echo "boot.sh: installing qemu-system-x86" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86 >&2 \
        || die "could not install qemu-system-x86"
}

# /dev/kvm can exist and still fail (nested, software hypervisors): qemu errors out or hangs while the
# kernel unpacks. The probe boots the kernel without a root and expects its panic within seconds.
kvm_works() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
    local cache
    cache="$here/build/kvm-probe.$(cat /proc/sys/kernel/random/boot_id)"
    if [ ! -f "$cache" ]; then
        local log
        log=$(mktemp)
        timeout 20 qemu-system-x86_64 -accel kvm -cpu host -m 256 -nodefaults -display none -no-reboot \
            -kernel "$image/vmlinuz" -append "console=ttyS0 panic=-1 root=/dev/sba-no-root" \
            -serial "file:$log" >/dev/null 2>&1 || true
        if grep -q "Kernel panic" "$log"; then echo kvm > "$cache"; else echo tcg > "$cache"; fi
        rm -f "$log"
    fi
    [ "$(cat "$cache")" = kvm ]
}

case "${SBA_ACCEL:-auto}" in
    kvm) accel=(-accel kvm -cpu host) ;;
    tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
    auto) if kvm_works; then accel=(-accel kvm -cpu host); else accel=(-accel tcg,thread=multi -cpu max); fi ;;
    *) die "SBA_ACCEL must be kvm or tcg" ;;
esac

if [ -n "$disk" ]; then
    [ -f "$disk" ] || qemu-img create -q -f qcow2 -b "$image/rootfs.qcow2" -F qcow2 "$disk" \
        || die "could not create the overlay $disk"
    drive="file=$disk,if=virtio,format=qcow2"
else
    drive="file=$image/rootfs.qcow2,if=virtio,format=qcow2,snapshot=on,cache=unsafe"
fi

qmp_args=()
[ -n "$qmp" ] && qmp_args=(-qmp "unix:$qmp,server=on,wait=off")

echo "boot.sh: ${accel[1]%%,*} $variant, ${mem} MiB, ${smp} CPUs" >&2
exec qemu-system-x86_64 "${accel[@]}" -m "$mem" -smp "$smp" -nodefaults -display none \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet $append" \
    -drive "$drive" \
    -device virtio-rng-pci \
    -serial "file:$console" -serial "file:$serial2" \
    "${qmp_args[@]}" "${fw_cfg[@]}" "$@"
