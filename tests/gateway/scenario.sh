# Sourced by tests/gateway/guest.sh in the VM: fd 3 feeds pri-peer (libpri, network side, span 2);
# `step NAME REGEX SECONDS` waits for a pri-peer event (since the last `mark`) and reports ok/fail
# on the serial port. sipp stands in for sba-mediation on loopback (the gateway's default
# `mediation`, 127.0.0.1:5070), with the scenarios of tests/gateway/sipp (in /payload/sipp).
# Audio is compared on the PSTN call: bchan plays a pattern into the far end's B-channel (span 2)
# and finds it again, byte for byte, after sba-gateway, RTP, sipp's echo and back.

since=0
mark() { since=$(wc -l < /tmp/peer.out); }
# Waits up to $4 seconds until REGEX ($3) has matched at least $5 (1) lines of FILE ($1) after
# its first $2 lines.
await_in() {
    for _ in $(seq 1 $(( $4 * 10 ))); do
        if [ "$(tail -n "+$(($2 + 1))" "$1" | grep -Ec "$3")" -ge "${5:-1}" ]; then return 0; fi
        sleep 0.1
    done
    return 1
}
# Waits up to $2 seconds for a pri-peer event matching REGEX ($1) since the mark.
await() { await_in /tmp/peer.out "$since" "$1" "$2"; }
# Waits until REGEX ($1) has matched $2 pri-peer events since the mark, for up to $3 seconds.
await_count() { await_in /tmp/peer.out "$since" "$1" "$3" "$2"; }
# Waits up to $2 seconds for a line matching REGEX ($1) added to sba-gateway's log since logmark.
logmark() { logsince=$(wc -l < /tmp/gateway.log); }
await_log() { await_in /tmp/gateway.log "$logsince" "$1" "$2"; }
# The id of the call pri-peer placed or was offered since the mark ($1: placed or ring).
call_id() { tail -n "+$((since + 1))" /tmp/peer.out | sed -n "s/^$1 \([0-9]*\).*/\1/p" | head -1; }
# sipp, bounded by its own -timeout; logs in /tmp. Mediation's address with -p 5070.
sipp_run() {
    (cd /tmp && exec sipp -i 127.0.0.1 -nostdin -timeout 120s -timeout_error -trace_err "$@" >/dev/null 2>&1)
}
# Reports ok NAME when sipp (pid $2) exited 0.
sipp_step() {
    if wait "$2"; then report "ok $1"; else report "fail $1 (sipp: $(grep -h -A2 -E 'Aborting|expecting|timed out' /tmp/*_errors.log 2>/dev/null | head -c 600 | tr '\n' '|'))"; fi
}
for c in 34 38; do sed "s/@CAUSE@/$c/" /payload/sipp/mediation_refused.xml > "/tmp/refused_$c.xml"; done

# PSTN -> branch: the SETUP becomes an INVITE for 2000 to mediation, which rings and answers;
# the PSTN hangs up and mediation's BYE carries cause 16.
sipp_run -sf /payload/sipp/mediation_answers.xml -p 5070 -mp 6000 -rtp_echo -m 1 &
uas=$!
sleep 1
mark
echo "call 1 2000" >&3
step pstn-setup-placed '^placed 0$' 5
step pstn-call-proceeding-on-1 '^proceeding 0 chan=1$' 10
step pstn-call-ringing-from-sip-180 '^ringing 0$' 15
step pstn-call-answered-from-sip-200 '^answer 0$' 15
# Byte exact: every octet that came back is either the pattern, in the order it was sent, or the
# idle code a channel plays when no audio was written in time (foreign=0 reordered=0: nothing
# altered, repeated or reordered). A guest starved by its host loses blocks (gaps) and fills
# with idle, so losses are bounded, not forbidden: half the frames back whole, and one stretch
# of at least half a second (25 frames, 4000 octets) back unbroken.
# Channel 1 of span 2 is DAHDI channel 25.
audio=$(/payload/bchan 25 4 2>&1 | grep '^audio')
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<"$audio"; }
frames=$(field frames) matched=$(field matched) longest=$(field longest)
if [ -n "$frames" ] && [ "$frames" -gt 0 ] && [ "$(field foreign)" = 0 ] && [ "$(field reordered)" = 0 ] &&
    [ $((matched * 2)) -ge "$frames" ] && [ "$longest" -ge 4000 ]; then
    report "ok pstn-call-audio-both-ways-byte-exact ($audio)"
else
    report "fail pstn-call-audio-both-ways-byte-exact ($audio)"
fi
echo "hangup 0 16" >&3
step pstn-call-released '^hangup(_ack)? 0' 10
sipp_step mediation-answered-and-got-bye-cause-16 "$uas"

# Branch -> PSTN: mediation's INVITE for 3000 (PCMA offered on a mu-law span) becomes a SETUP;
# the PSTN answers, then hangs up: mediation gets the 200 and a BYE with cause 16.
mark
sipp_run 127.0.0.1:5080 -sf /payload/sipp/mediation_calls.xml -s 3000 -p 5071 -mp 6010 -rtp_echo -m 1 &
uac=$!
step branch-call-setup-for-3000 '^ring 0 chan=[0-9]+ called=3000 calling=5551000$' 15
echo "answer 0" >&3
sleep 2
echo "hangup 0 16" >&3
step branch-call-released '^hangup(_ack)? 0' 10
sipp_step mediation-call-answered-and-got-bye-cause-16 "$uac"

# Disconnect from the SIP side, both ways: mediation hangs up with Q.850 cause 31 in its BYE,
# sba-gateway sends DISCONNECT with that cause.
sipp_run -sf /payload/sipp/mediation_answers_and_hangs_up.xml -p 5070 -mp 6000 -m 1 &
uas=$!
sleep 1
mark
echo "call 1 2000" >&3
step pstn-call-2-answered-from-sip '^answer [0-9]+$' 15
id=$(call_id placed)
step pstn-call-2-cleared-by-mediation-cause-31 "^hangup_req ${id:-0} cause=31$" 15
sipp_step mediation-hung-up-the-pstn-call "$uas"
mark
sipp_run 127.0.0.1:5080 -sf /payload/sipp/mediation_calls_and_hangs_up.xml -s 3000 -p 5071 -mp 6010 -m 1 &
uac=$!
step branch-call-2-setup-for-3000 '^ring [0-9]+ chan=[0-9]+ called=3000 ' 15
id=$(call_id ring)
echo "answer ${id:-0}" >&3
step branch-call-2-cleared-by-mediation-cause-31 "^hangup_req ${id:-0} cause=31$" 15
sipp_step mediation-hung-up-the-branch-call "$uac"

# Glare: the branch and the PSTN seize B-channel 1 at once. pri-peer stops reading its D-channel;
# mediation's INVITE for 3000 makes sba-gateway send its SETUP for channel 1 (preferred: the user
# side hunts from the bottom), which waits unread; libpri's SETUP for channel 1 (exclusive) then
# crosses it on the line. The network's call keeps the channel (Q.931 5.7: sba-gateway gives its
# own call's claim up and says so in its log), and libpri, reading our SETUP at last, offers our
# call another channel. Both calls are answered, then cleared by the PSTN.
# libpri hears again as soon as its SETUP is out (deaf 0): a starved guest may take seconds to
# start sipp, so the deaf spell is long enough for that (6 s, well inside Q.921's idle timer T203,
# 10 s), yet ends before either side's T200 retries (3 x 1 s) give the link up.
sipp_run -sf /payload/sipp/mediation_answers.xml -p 5070 -mp 6000 -m 1 &
uas=$!
sleep 1
mark
logmark
echo "deaf 6000" >&3
sipp_run 127.0.0.1:5080 -sf /payload/sipp/mediation_calls.xml -s 3000 -p 5071 -mp 6010 -m 1 &
uac=$!
if await_log 'SETUP on B-channel 1 ' 6; then
    printf 'call 1 2000\ndeaf 0\n' >&3
    if await_log 'glare on B-channel 1: the network' 3; then
        report "ok glare-setups-crossed-the-network-call-takes-channel-1"
    else
        report "fail glare-setups-crossed-the-network-call-takes-channel-1 ($(tail -n "+$((logsince + 1))" /tmp/gateway.log | grep -i -E 'q931|glare' | tail -4 | tr '\n' '|'))"
    fi
else
    report "fail glare-setups-crossed-the-network-call-takes-channel-1 (no SETUP from sba-gateway while libpri was deaf)"
    echo "call 1 2000" >&3
fi
step glare-network-call-proceeding-on-1 '^proceeding [0-9]+ chan=1$' 15
step glare-branch-call-moved-off-channel-1 '^ring [0-9]+ chan=([2-9]|1[0-9]|2[0-3]) called=3000 ' 15
ours=$(call_id ring)
theirs=$(call_id placed)
echo "answer ${ours:-0}" >&3
step glare-network-call-answered-from-sip "^answer ${theirs:-0}$" 15
sleep 1
echo "hangup ${ours:-0} 16" >&3
echo "hangup ${theirs:-0} 16" >&3
if await_count '^hangup(_ack)? [0-9]+' 2 15; then report "ok glare-both-calls-released"; else report "fail glare-both-calls-released"; fi
sipp_step glare-mediation-calls-completed "$uac"
sipp_step glare-mediation-answers-completed "$uas"

# Overlap dialling: the PSTN's SETUP carries 2 without sending complete; sba-gateway acknowledges
# it (SETUP ACKNOWLEDGE), collects 0, 0, 1 from INFORMATION messages and, 2001 being complete by
# its dial plan (2XXX), sends CALL PROCEEDING and the INVITE for 2001 (sipp checks the number).
sed 's/sip:2000@/sip:2001@/' /payload/sipp/mediation_answers.xml > /tmp/answers_2001.xml
sipp_run -sf /tmp/answers_2001.xml -p 5070 -mp 6000 -m 1 &
uas=$!
sleep 1
mark
echo "overlap 1 2" >&3
step overlap-setup-acknowledged '^setup_ack [0-9]+ chan=1$' 10
id=$(tail -n "+$((since + 1))" /tmp/peer.out | sed -n 's/^placed \([0-9]*\)$/\1/p' | head -1)
echo "info ${id:-0} 00" >&3
sleep 1
if tail -n "+$((since + 1))" /tmp/peer.out | grep -q "^proceeding ${id:-0} "; then
    report "fail overlap-waits-for-the-complete-number (proceeding after 200)"
else
    report "ok overlap-waits-for-the-complete-number"
fi
echo "info ${id:-0} 1" >&3
step overlap-complete-number-proceeding "^proceeding ${id:-0} " 10
step overlap-invite-for-2001-answered "^answer ${id:-0}$" 15
echo "hangup ${id:-0} 16" >&3
step overlap-call-released "^hangup(_ack)? ${id:-0}" 10
sipp_step mediation-got-invite-for-2001-and-bye "$uas"

# All 23 B-channels seized at once from the PSTN, every call answered through SIP; then an
# INVITE from mediation finds the span full: 503 with Q.850 cause 34. No RTP echo here: 23
# streams echoed would overload sipp in a TCG guest.
sipp_run -sf /payload/sipp/mediation_answers.xml -p 5070 -mp 6000 -m 23 &
uas=$!
sleep 1
mark
for c in $(seq 1 23); do echo "call $c 2000" >&3; done
if await_count '^answer [0-9]+$' 23 60; then report "ok 23-calls-answered-through-sip"; else report "fail 23-calls-answered-through-sip ($(tail -n "+$((since + 1))" /tmp/peer.out | grep -c '^answer') of 23)"; fi
sipp_run 127.0.0.1:5080 -sf /tmp/refused_34.xml -s 3001 -p 5071 -mp 6010 -m 1 &
sipp_step full-span-invite-503-cause-34 $!
mark
for id in $(seq 0 22); do echo "hangup $id 16" >&3; done
if await_count '^hangup(_ack)? [0-9]+' 23 30; then report "ok 23-calls-released"; else report "fail 23-calls-released"; fi
sipp_step mediation-got-23-byes "$uas"

# Span 2 destroyed (after pri-peer lets go of it): span 1 receives nothing, dahdi_dynamic puts it
# in red alarm after a second, and sba-gateway must report the trunk unavailable, to mediation too.
kill "$peer" 2>/dev/null
wait "$peer" 2>/dev/null
if ! /payload/span-down loc 1:1 24 2>/tmp/span-down.err; then report "info span-down: $(cat /tmp/span-down.err)"; fi
for _ in $(seq 1 150); do
    grep -q 'sba_gateway::edge: trunk unavailable' /tmp/gateway.log && break
    sleep 0.1
done
if grep -q 'sba_gateway::edge: trunk unavailable' /tmp/gateway.log; then
    report "ok span-down-trunk-unavailable ($(grep -o 'alarms [a-z+-]*' /tmp/gateway.log | tail -1))"
else
    report "fail span-down-trunk-unavailable ($(grep -E 'alarm' /tmp/gateway.log | tail -2 | tr '\n' '|'))"
    tail -15 /tmp/gateway.log | while read -r l; do report "log $l"; done
fi
sipp_run 127.0.0.1:5080 -sf /tmp/refused_38.xml -s 3002 -p 5071 -mp 6010 -m 1 &
sipp_step span-down-invite-503-cause-38 $!
