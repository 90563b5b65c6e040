# tests/bench/gateway's scenario, sourced by tests/gateway/guest.sh in the VM in place of
# tests/gateway/scenario.sh (sba-gateway and pri-peer already up on spans 1 and 2). Reports
# `result NAME key=value...` lines on the serial port; /payload/extra holds bench.env (CALLS,
# CONCURRENT, JITTER_SECONDS, SEIZES), rtp-sink and uas_sink.xml.
# 1. sba-gateway (span 1, user side, info logging, SCHED_FIFO 50 as the appliance's unit runs it)
#    against pri-peer (network side, span 2), sipp answering as mediation: a full span seized at
#    once, then CALLS calls set up and cleared.
# 2. RTP timing: one call, then the full span, held for JITTER_SECONDS, mediation's SDP pointing at rtp-sink, which times
#    every stream while bchan times the B-channel blocks on the far end (DAHDI's own jitter);
#    sba-gateway logs, per call, the delay from each block's read to its RTP packet's send.
# 3. The reference: pri-peer --cpe --answer (libpri, user side) on span 1 instead of sba-gateway,
#    the same seize and calls.
. /payload/extra/bench.env

out=/tmp/bench.out
since=0
mark() { since=$(wc -l < "$out"); }
# The last line since the mark matching $1, waiting up to $2 seconds for it.
await_line() {
    local deadline=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -le "$deadline" ]; do
        if tail -n "+$((since + 1))" "$out" | grep -Eq "$1"; then
            tail -n "+$((since + 1))" "$out" | grep -E "$1" | tail -1
            return 0
        fi
        sleep 0.1
    done
    return 1
}
sipp_uas() {
    (cd /tmp && exec sipp -i 127.0.0.1 -p 5070 -mp 6000 -nostdin -timeout 300s -timeout_error -trace_err "$@" >/dev/null 2>&1)
}
stop() { for p in "$@"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
# CPU ticks (user + system) process $1 has used.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# Fresh ends on both spans: pri-peer (network) on span 2 and $1 (gateway or libpri) on span 1.
cpe=
start_pair() {
    stop "$gateway" "$peer" $cpe
    exec 3>&- 4>&-
    rm -f /tmp/bench.in /tmp/cpe.in
    mkfifo /tmp/bench.in /tmp/cpe.in
    : > "$out"
    since=0
    /payload/pri-peer --dahdi 48 --network --t1 </tmp/bench.in >"$out" 2>/tmp/bench.err &
    peer=$!
    exec 3>/tmp/bench.in
    gateway=
    cpe=
    if [ "$1" = gateway ]; then
        HOLDFAST_LOG=info HOLDFAST_LOG_STDERR=1 chrt -f 50 /payload/sba-gateway --config /payload/sba.toml >/tmp/gateway-bench.log 2>&1 &
        gateway=$!
    else
        /payload/pri-peer --dahdi 24 --cpe --t1 --answer </tmp/cpe.in >/tmp/cpe.out 2>/tmp/cpe.err &
        cpe=$!
        exec 4>/tmp/cpe.in
    fi
    if await_line '^up$' 30 >/dev/null; then
        report "ok $1-d-channel-up"
    else
        report "fail $1-d-channel-up (span 2: $(tail -3 /tmp/bench.err | tr '\n' '|') span 1: $(tail -5 /tmp/cpe.err /tmp/gateway-bench.log 2>/dev/null | tr '\n' '|'))"
    fi
}

# seize NAME: all 23 B-channels at once, each answered (by sipp through the gateway, or libpri),
# then cleared; SEIZES times, one result line each.
seize() {
    for _ in $(seq 1 "$SEIZES"); do
        mark
        echo "seize 23 2000 0" >&3
        if line=$(await_line '^seized ' 60); then report "result $1-seize $line"; else report "fail $1-seize ($(echo report >&3; sleep 1; tail -1 "$out"))"; fi
        if line=$(await_line '^released ' 60); then report "result $1-release $line"; else report "fail $1-release"; fi
        sleep 1
    done
}

# rate NAME: CALLS calls, CONCURRENT at a time, each cleared as soon as it is answered.
rate() {
    mark
    echo "bench $CALLS $CONCURRENT 2000" >&3
    if line=$(await_line '^bench ' $((60 + CALLS / 2))); then report "result $1-rate $line"; else report "fail $1-rate ($(echo report >&3; sleep 1; tail -1 "$out"))"; fi
}

start_pair gateway
sipp_uas -sf /payload/sipp/mediation_answers.xml -m $((23 * SEIZES)) &
uas=$!
sleep 1
seize gateway
stop "$uas"

sipp_uas -sf /payload/sipp/mediation_answers.xml -m "$CALLS" &
uas=$!
sleep 1
rate gateway
stop "$uas"

# jitter CALLS: CALLS calls held for JITTER_SECONDS with their RTP timed; results named -CALLS.
jitter() {
    cpu=
    sipp_uas -sf /payload/extra/uas_sink.xml -m "$1" &
    uas=$!
    sleep 1
    mark
    echo "seize $1 2000 $(( (JITTER_SECONDS + 3) * 1000 ))" >&3
    if await_line '^seized ' 60 >/dev/null; then
        /payload/extra/rtp-sink 7000 "$JITTER_SECONDS" >/tmp/sink.out 2>&1 &
        sink=$!
        cpu0=$(ticks "$gateway")
        # Channel 23 of span 2 (DAHDI 47): the far end of the first call.
        /payload/bchan 47 "$JITTER_SECONDS" >/tmp/bchan.out 2>&1
        wait "$sink"
        cpu=$(( ($(ticks "$gateway") - cpu0) * 100 / ($(getconf CLK_TCK) * JITTER_SECONDS) ))
        report "result gateway-rtp-$1 $(grep '^rtp' /tmp/sink.out)"
        report "result bchannel-blocks-$1 $(grep '^intervals' /tmp/bchan.out)"
    else
        report "fail gateway-rtp-$1 (the calls were not all answered)"
    fi
    await_line '^released ' 60 >/dev/null || report "fail gateway-rtp-$1-release"
    sleep 1
    # sba-gateway's own measure, logged per call when its RTP stops: B-channel read to RTP send.
    delays=$(grep 'B-channel read to RTP send' /tmp/gateway-bench.log | tail -"$1" | awk '
    { for (i = 1; i <= NF; i++) { split($i, kv, "=")
        if (kv[1] == "n") n += kv[2]
        if (kv[1] == "p50_us" && kv[2] + 0 > p50) p50 = kv[2] + 0
        if (kv[1] == "p99_us" && kv[2] + 0 > p99) p99 = kv[2] + 0
        if (kv[1] == "max_us" && kv[2] + 0 > max) max = kv[2] + 0 } }
    END { printf "calls=%d n=%d p50_us=%d p99_us=%d max_us=%d", NR, n, p50, p99, max }')
    report "result gateway-send-delay-$1 $delays cpu_pct=${cpu:--}"
    stop "$uas"
}
jitter 1
jitter 23
report "info gateway $(grep -cE ' (WARN|ERROR) ' /tmp/gateway-bench.log) warnings: $(grep -E ' (WARN|ERROR) ' /tmp/gateway-bench.log | tail -2 | tr '\n' '|')"

start_pair libpri
seize libpri
rate libpri
stop $cpe
