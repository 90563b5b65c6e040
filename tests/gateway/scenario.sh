# Sourced by the VM's holdfast-gateway-test: fd 3 feeds pri-peer (libpri, network side, span 2);
# `step NAME REGEX SECONDS` waits for a pri-peer event (since the last `mark`) and reports ok/fail
# on the serial port.
#
# sba-gateway has no SIP side yet: it refuses PSTN calls with cause 41 (temporary failure), which
# is what is checked here, and last a span taken down. Audio, branch-to-PSTN calls and glare need
# the SIP side (or a control interface) and are not in this scenario yet.

since=0
mark() { since=$(wc -l < /tmp/peer.out); }
await() {
    for _ in $(seq 1 $(( $2 * 10 ))); do
        if tail -n "+$((since + 1))" /tmp/peer.out | grep -Eq "$1"; then return 0; fi
        sleep 0.1
    done
    return 1
}
# Waits until REGEX ($1) has matched $2 lines since the mark, for up to $3 seconds.
await_count() {
    for _ in $(seq 1 $(( $3 * 10 ))); do
        if [ "$(tail -n "+$((since + 1))" /tmp/peer.out | grep -Ec "$1")" -ge "$2" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}

mark
echo "call 1 2000" >&3
step pstn-setup-placed '^placed 0$' 5
step pstn-call-proceeding-on-1 '^proceeding 0 chan=1$' 10
step pstn-call-refused-cause-41 '^hangup_req 0 cause=41$' 10
step pstn-call-released '^hangup(_ack)? 0' 10

# The top channel, then all 23 B-channels seized at once: every SETUP is answered.
mark
echo "call 23 2001" >&3
step call-on-23-proceeding '^proceeding 0 chan=23$' 10
step call-on-23-refused-cause-41 '^hangup_req 0 cause=41$' 10
sleep 1
mark
for c in $(seq 1 23); do echo "call $c 3$c" >&3; done
if await_count '^proceeding [0-9]+ chan=' 23 30; then report "ok 23-setups-proceeding"; else report "fail 23-setups-proceeding ($(tail -n "+$((since + 1))" /tmp/peer.out | grep -c proceeding) of 23)"; fi
if await_count '^hangup_req [0-9]+ cause=41$' 23 30; then report "ok 23-calls-refused-cause-41"; else report "fail 23-calls-refused-cause-41"; fi


# Span 2 destroyed (after pri-peer lets go of it): span 1 receives nothing, dahdi_dynamic puts it
# in red alarm after a second, and sba-gateway must report the trunk unavailable.
kill "$peer" 2>/dev/null
wait "$peer" 2>/dev/null
if ! /payload/span-down loc 1:1 24 2>/tmp/span-down.err; then report "info span-down: $(cat /tmp/span-down.err)"; fi
for _ in $(seq 1 150); do
    grep -q 'sba_gateway: trunk unavailable' /tmp/gateway.log && break
    sleep 0.1
done
if grep -q 'sba_gateway: trunk unavailable' /tmp/gateway.log; then
    report "ok span-down-trunk-unavailable ($(grep -o 'alarms [a-z+-]*' /tmp/gateway.log | tail -1))"
else
    report "fail span-down-trunk-unavailable ($(grep -E 'alarm' /tmp/gateway.log | tail -2 | tr '\n' '|'))"
fi
