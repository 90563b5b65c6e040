#!/bin/bash
# Boots the gateway test VM on the real DAHDI modules and prints its report.
#   tests/gateway/run-vm-test.sh [IMAGE_DIR]
# IMAGE_DIR holds build-image.sh's output (built there if missing). sba-gateway is taken from
# $HOLDFAST_BIN_DIR or target/debug; pri-peer, span-down and bchan are compiled here (gcc,
# libpri-dev); sipp (in the image) stands in for sba-mediation with the scenarios of
# tests/gateway/sipp. HOLDFAST_GW_SCENARIO names another scenario to play (tests/bench/gateway's)
# and HOLDFAST_GW_EXTRA a directory copied beside it as /payload/extra.
# Exit status 0 when every step reported ok.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
image="${1:-$here/image/out}"
[ -f "$image/rootfs.ext4" ] || "$here/image/build-image.sh" "$image"

run="$(mktemp -d)"
trap 'rm -rf "$run"' EXIT
payload="$run/payload"
mkdir -p "$payload"
bin="${HOLDFAST_BIN_DIR:-$repo/target/debug}/sba-gateway"
[ -x "$bin" ] || { echo "no $bin: cargo build -p sba-gateway first" >&2; exit 2; }
cp "$bin" "$payload/sba-gateway"
cc -Wall -O1 -o "$payload/pri-peer" "$here/pri-peer/pri_peer.c" -lpri
cc -Wall -O1 -o "$payload/span-down" "$here/span-down/span_down.c"
cc -Wall -O1 -o "$payload/bchan" "$here/bchan/bchan.c"
cp "$here/guest.sh" "$here/sba.toml" "$payload/"
cp "${HOLDFAST_GW_SCENARIO:-$here/scenario.sh}" "$payload/scenario.sh"
[ -z "${HOLDFAST_GW_EXTRA:-}" ] || cp -r "$HOLDFAST_GW_EXTRA" "$payload/extra"
cp -r "$here/sipp" "$payload/sipp"
mkfs.ext4 -q -d "$payload" "$run/payload.ext4" 256M
qemu-img create -q -f qcow2 -b "$image/rootfs.ext4" -F raw "$run/overlay.qcow2"

# TCG by default: /dev/kvm on these machines is a software hypervisor on which qemu fails or hangs.
# HOLDFAST_VM_KVM=1 on a real host.
accel=(-accel "tcg,thread=multi")
[ -n "${HOLDFAST_VM_KVM:-}" ] && accel=(-accel kvm)

timeout "${HOLDFAST_VM_TIMEOUT:-900}" qemu-system-x86_64 "${accel[@]}" \
    -cpu max -smp 2 -m 1024 -display none -monitor none -no-reboot \
    -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet no_timer_check" \
    -drive "file=$run/overlay.qcow2,if=virtio,format=qcow2" \
    -drive "file=$run/payload.ext4,if=virtio,format=raw,readonly=on" \
    -serial "file:$run/console.log" -serial "file:$run/report.log" || true

cat "$run/report.log" 2>/dev/null || true
if ! grep -q '^done 0' "$run/report.log" 2>/dev/null; then
    echo "--- VM did not finish; console tail:"
    tail -30 "$run/console.log" 2>/dev/null || true
    exit 1
fi
! grep -q '^fail' "$run/report.log"
