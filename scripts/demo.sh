#!/usr/bin/env bash
# make demo: start veild on a fresh embedded store, put a proxy number in
# the pool, open a masking session between a guest and a host through the
# admin API, place one masked call with audio between two SIPp carriers,
# show what the host's side saw and how Veil recorded the call, and stop the
# daemon with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v sipp >/dev/null || ./scripts/deps.sh sipp

work="$(mktemp -d -t veil-demo-XXXXXX)"
pid=""
callee=""
cleanup() {
	if [ -n "$callee" ] && kill -0 "$callee" 2>/dev/null; then kill "$callee"; wait "$callee" || true; fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The shipped loopback config, with the store in a scratch directory and
# the admin API on a free port.
sed -e "s|^data_dir:.*|data_dir: $work/data|" \
    -e 's|^admin:.*|admin: {listen: "127.0.0.1:0"}|' configs/veil.yaml > "$work/veil.yaml"

export VEIL_ADMIN_TOKEN="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
./bin/veild -config "$work/veil.yaml" 2> "$work/veild.log" &
pid=$!

addr=""
for _ in $(seq 100); do
	addr="$(sed -nE 's/.*msg="veild ready" admin=([0-9.:]+).*/\1/p' "$work/veild.log")"
	[ -n "$addr" ] && break
	kill -0 "$pid" 2>/dev/null || { cat "$work/veild.log"; echo "demo: veild exited" >&2; exit 1; }
	sleep 0.1
done
[ -n "$addr" ] || { cat "$work/veild.log"; echo "demo: veild not ready" >&2; exit 1; }

export VEIL_URL="http://$addr" VEIL_TOKEN="$VEIL_ADMIN_TOKEN"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "veild is up on $VEIL_URL ($(./bin/veild version))"
step "add proxy number +15550100001 (carrier1) to the pool"
./bin/veilctl numbers add -number +15550100001 -carrier carrier1

step "open a session: guest +15550100101 <-> host +15550100102, booking-42, 1 hour"
./bin/veilctl sessions create -a +15550100101 -b +15550100102 -mode voice+sms -ttl 1h -unique-name booking-42 | tee "$work/session.json"
proxy="$(sed -nE 's/.*"proxy_number": "([^"]+)".*/\1/p' "$work/session.json")"
echo "Both sides now dial or text $proxy; neither sees the other's number."

# wait_udp PORT: until something listens on 127.0.0.1:PORT/udp.
wait_udp() {
	local hex
	hex="$(printf ':%04X ' "$1")"
	for _ in $(seq 100); do
		grep -q "0100007F$hex" /proc/net/udp && return 0
		sleep 0.1
	done
	echo "demo: nothing listens on udp port $1" >&2
	return 1
}
sid="$(sed -nE 's/.*"id": "(ses_[^"]+)".*/\1/p' "$work/session.json")"

step "the host's carrier (carrier1: SIPp on 127.0.0.1:5070) answers and echoes the audio back"
sipp -sf e2e/testdata/sipp/uas_answer.xml -i 127.0.0.1 -mi 127.0.0.1 -p 5070 -mp 31000 -cp 31003 \
	-rtp_echo -m 1 -nostdin -timeout 30s -timeout_error \
	-trace_msg -message_file "$work/callee.log" > "$work/callee.out" 2>&1 &
callee=$!
wait_udp 5070

step "the guest +15550100101 calls $proxy through carrier2 (SIPp on 127.0.0.2; 7 s of G.711 audio, then hangs up)"
if ! sipp -sf e2e/testdata/sipp/uac_call.xml -s "$proxy" -set caller +15550100101 \
	-i 127.0.0.2 -mi 127.0.0.2 -p 5062 -mp 31010 -cp 31013 -m 1 -nostdin -timeout 30s -timeout_error \
	127.0.0.1:5060 > "$work/caller.out" 2>&1; then
	tail -20 "$work/caller.out"; tail -20 "$work/veild.log"; echo "demo: the call failed" >&2; exit 1
fi
wait "$callee" || { tail -20 "$work/callee.out"; echo "demo: the host's carrier failed" >&2; exit 1; }
callee=""
echo "call done."

step "what the host's phone was shown: the INVITE carrier1 received"
awk '/^INVITE /{on=1} on&&/^(INVITE |From:|To:|P-Asserted-Identity:|Contact:|Call-ID:)/{print "  " $0} on&&/^$/{exit}' "$work/callee.log"
echo "The caller ID is the proxy number $proxy: no trace of +15550100101, its carrier's address or headers."

step "the call as Veil recorded it (GET /v1/sessions/$sid/interactions)"
for _ in $(seq 50); do
	./bin/veilctl sessions interactions -id "$sid" > "$work/calls.json"
	grep -q '"end_reason"' "$work/calls.json" && break
	sleep 0.1
done
cat "$work/calls.json"
packets="$(grep -o '"packets": [0-9]*' "$work/calls.json" | grep -o '[0-9]*' | tr '\n' ' ')"
duration="$(grep -o '"duration_ms": [0-9]*' "$work/calls.json" | grep -o '[0-9]*')"
echo "Answered call of ${duration} ms; RTP packets relayed guest->host, host->guest: ${packets}(SIPp played 236)."

step "a second session for the same pair needs a second number: the API says so"
./bin/veilctl sessions create -a +15550100101 -b +15550100102 || true

step "open sessions"
./bin/veilctl sessions list -state open

step "stop veild (SIGTERM drains and exits 0)"
kill -TERM "$pid"
wait "$pid" && echo "veild exited 0"
pid=""
