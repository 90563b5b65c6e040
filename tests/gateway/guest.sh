#!/bin/bash
# Runs inside the gateway test VM, from the payload disk (run-vm-test.sh). sba-gateway starts as the
# appliance starts it, a Type=notify service, before any DAHDI module is loaded (a box whose card's
# driver udev has not loaded yet): it must be READY without its span. Then the two back-to-back dynamic spans appear (the test's card); span 2
# is configured by dahdi_cfg for libpri's pri-peer (network side, D-channel 48), span 1 by
# sba-gateway itself from sba.toml. The scenario is played and every step reported on /dev/ttyS1,
# then the VM powers off.
set -uo pipefail
report() { echo "$*" > /dev/ttyS1; }
finish() { report "done $1"; sync; systemctl poweroff --no-block; exit 0; }

[ -e /dev/dahdi/ctl ] && { report "fail no-dahdi-before-the-gateway (/dev/dahdi/ctl exists)"; finish 1; }
if systemd-run --unit=sba-gateway -p Type=notify -p NotifyAccess=main \
    -p StandardOutput=append:/tmp/gateway.log -p StandardError=append:/tmp/gateway.log \
    -E HOLDFAST_LOG=debug -E HOLDFAST_LOG_STDERR=1 /payload/sba-gateway --config /payload/sba.toml; then
    status=$(systemctl show -p StatusText --value sba-gateway)
    case "$status" in
        *unavailable*) report "ok gateway-ready-without-dahdi ($status)" ;;
        *) report "fail gateway-ready-without-dahdi (status: $status)" ;;
    esac
else
    report "fail gateway-ready-without-dahdi ($(tail -3 /tmp/gateway.log | tr '\n' '|'))"
    finish 1
fi
gateway=$(systemctl show -p MainPID --value sba-gateway)

modprobe dahdi && modprobe dahdi_dynamic_loc || { report "fail modprobe"; finish 1; }
dahdi_cfg -c /etc/dahdi/dynamic.conf || { report "fail dynamic.conf"; finish 1; }
udevadm settle
dahdi_cfg -v >/tmp/dahdi_cfg.log 2>&1 || { report "fail system.conf $(tail -1 /tmp/dahdi_cfg.log)"; finish 1; }
udevadm settle
report "dahdi spans $(ls /sys/bus/dahdi_spans/devices | tr '\n' ' ')"

# sba-gateway finds span 1 by itself and configures it: 23 clear channels and an HDLC D-channel.
for _ in $(seq 1 100); do grep -q 'DAHDI span 1: T1 .* started' /tmp/gateway.log && break; sleep 0.1; done
clear=$(grep -c ' Clear' /proc/dahdi/1)
hdlc=$(grep -c ' HDLCFCS' /proc/dahdi/1)
if grep -q 'DAHDI span 1: T1 .* started' /tmp/gateway.log && [ "$clear" = 23 ] && [ "$hdlc" = 1 ]; then
    report "ok gateway-configured-span-1 ($(grep -o 'DAHDI span 1: T1 .* started' /tmp/gateway.log | head -1))"
else
    report "fail gateway-configured-span-1 (clear=$clear hdlc=$hdlc; $(grep -E 'DAHDI span 1' /tmp/gateway.log | tail -2 | tr '\n' '|'))"
fi

# pri-peer reads commands from a FIFO and writes events to a file the scenario follows.
mkfifo /tmp/peer.in
/payload/pri-peer --dahdi 48 --network --t1 </tmp/peer.in >/tmp/peer.out 2>/tmp/peer.err &
peer=$!
exec 3>/tmp/peer.in

# Waits up to $2 seconds for a pri-peer event line matching the regex $1.
await() {
    for _ in $(seq 1 $(( $2 * 10 ))); do
        if grep -Eq "$1" /tmp/peer.out; then return 0; fi
        sleep 0.1
    done
    return 1
}
step() { if await "$2" "$3"; then report "ok $1"; else report "fail $1 (peer: $(tail -3 /tmp/peer.out | tr '\n' '|'))"; fi; }

step d-channel-up '^up$' 60
. /payload/scenario.sh
report "gateway log: $(grep -c . /tmp/gateway.log) lines"
grep -E "in service|unavailable|SETUP|DISCONNECT|refusing|error" /tmp/gateway.log | tail -20 | while read -r l; do report "log $l"; done
kill "$gateway" "$peer" 2>/dev/null
finish 0
