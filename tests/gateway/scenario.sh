# Sourced by the VM's holdfast-gateway-test: fd 3 feeds pri-peer (libpri, network side, span 2);
# `step NAME REGEX SECONDS` waits for a pri-peer event and reports ok/fail on the serial port.
#
# sba-gateway has no SIP side yet: it refuses PSTN calls with cause 41 (temporary failure), which
# is what is checked here. Audio, branch-to-PSTN calls, glare, a full span and alarms need the SIP
# side (or a control interface) and are not in this scenario yet.

echo "call 1 2000" >&3
step pstn-setup-placed '^placed 0$' 5
step pstn-call-proceeding-on-1 '^proceeding 0 chan=1$' 10
step pstn-call-refused-cause-41 '^hangup(_req)? 0 cause=41$' 10

# The D-channel keeps working: a second call on the top channel gets the same treatment.
echo "call 23 2001" >&3
step second-call-proceeding-on-23 '^proceeding 1 chan=23$' 10
step second-call-refused-cause-41 '^hangup(_req)? 1 cause=41$' 10
