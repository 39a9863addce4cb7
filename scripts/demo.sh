#!/usr/bin/env bash
# make demo: start veild on a fresh embedded store, put a proxy number in
# the pool, open a masking session between a guest and a host through the
# admin API, place one masked call with audio between two SIPp carriers,
# show what the host's side saw and how Veil recorded the call, relay one
# masked SMS through the SMSC simulator (the carriers' SMPP side) and show
# its delivery receipt, send one through the API, and stop the daemon with
# SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v sipp >/dev/null || ./scripts/deps.sh sipp
if ! command -v node >/dev/null || [ ! -f e2e/smsc/node_modules/smpp/package.json ]; then
	./scripts/deps.sh smsc
fi

work="$(mktemp -d -t veil-demo-XXXXXX)"
pid=""
callee=""
smsc=""
cleanup() {
	if [ -n "$callee" ] && kill -0 "$callee" 2>/dev/null; then kill "$callee"; wait "$callee" || true; fi
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
	if [ -n "$smsc" ] && kill -0 "$smsc" 2>/dev/null; then kill -TERM "$smsc"; wait "$smsc" || true; fi
	rm -rf "$work"
}
trap cleanup EXIT

# The SMSC simulator plays both carriers' SMPP side (e2e/smsc/README.md):
# it binds veild, records what veild submits, answers with receipts and
# injects messages from handsets through its control API.
node e2e/smsc/smsc.js --smpp-port 0 --control-port 0 --host 127.0.0.1 > "$work/smsc.out" 2> "$work/smsc.log" &
smsc=$!
smpp_port="" ctl_port=""
for _ in $(seq 100); do
	smpp_port="$(sed -nE 's/^\{"smpp":([0-9]+),"control":([0-9]+)\}$/\1/p' "$work/smsc.out")"
	ctl_port="$(sed -nE 's/^\{"smpp":([0-9]+),"control":([0-9]+)\}$/\2/p' "$work/smsc.out")"
	[ -n "$smpp_port" ] && break
	kill -0 "$smsc" 2>/dev/null || { cat "$work/smsc.log"; echo "demo: the SMSC simulator exited" >&2; exit 1; }
	sleep 0.1
done
[ -n "$smpp_port" ] || { cat "$work/smsc.log"; echo "demo: the SMSC simulator is not ready" >&2; exit 1; }
smsc_url="http://127.0.0.1:$ctl_port"

# The shipped loopback config, with the store in a scratch directory, the
# admin API on a free port and both carriers' SMPP binds on the simulator.
sed -e "s|^data_dir:.*|data_dir: $work/data|" \
    -e 's|^admin:.*|admin: {listen: "127.0.0.1:0"}|' \
    -e "s|smpp: {address: \"127.0.0.1:277[56]\"|smpp: {address: \"127.0.0.1:$smpp_port\"|" \
    configs/veil.yaml > "$work/veil.yaml"
grep -q "127.0.0.1:$smpp_port" "$work/veil.yaml" || { echo "demo: configs/veil.yaml has no smpp address to point at the simulator" >&2; exit 1; }

export VEIL_ADMIN_TOKEN="demo-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export VEIL_SMPP_PASSWORD=secret # the simulator's default password
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
if [ -t 1 ]; then
	step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	step() { printf '\n== %s\n' "$*"; }
fi

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
if ! wait_udp 5070; then
	tail -20 "$work/callee.out"
	echo "demo: SIPp (the host's carrier) did not start: is udp port 5070 or 31000-31003 in use?" >&2
	exit 1
fi

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

# json EXPR: evaluate EXPR on the JSON document on stdin (as j) with node,
# which the simulator needs anyway; prints strings raw, anything else as
# indented JSON.
json() {
	node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const j=JSON.parse(s);const v=('"$1"');
		console.log(typeof v==="string"?v:JSON.stringify(v,null,2))})'
}
# smsc_api URL [JSON]: GET URL, or POST JSON to it, on the simulator's
# control API (with node: curl may not be installed).
smsc_api() {
	node --no-warnings -e 'const [u, b] = process.argv.slice(1);
		fetch(u, b ? {method: "POST", headers: {"Content-Type": "application/json"}, body: b} : {})
			.then(async r => { const t = await r.text(); if (!r.ok) { console.error(r.status + " " + t); process.exit(1) } process.stdout.write(t) })
			.catch(e => { console.error(e.message); process.exit(1) })' "$@"
}

step "SMS: veild's SMPP binds, both on the SMSC simulator (127.0.0.1:$smpp_port) (GET /v1/carriers)"
for _ in $(seq 100); do
	./bin/veilctl carriers list > "$work/carriers.json"
	[ "$(grep -c '"state": "bound"' "$work/carriers.json")" = 2 ] && break
	sleep 0.1
done
cat "$work/carriers.json"

text="Hi! Is the flat still free on Friday? I land at 9."
step "the guest +15550100101 texts $proxy: the simulator delivers it to veild (deliver_sm, through its control API)"
smsc_api "$smsc_url/mo" "{\"from\":\"+15550100101\",\"to\":\"$proxy\",\"text\":\"$text\"}" | json 'j'
echo "(a deliver_sm_resp status 0: veild stored the message before answering)"

step "what the host's carrier received: veild's submit_sm (the relayed MT)"
mt=""
for _ in $(seq 100); do
	mt="$(smsc_api "$smsc_url/submits" | json 'j.length ? j[0] : ""')"
	[ -n "$mt" ] && break
	sleep 0.1
done
[ -n "$mt" ] || { tail -20 "$work/veild.log"; echo "demo: the SMS was not relayed" >&2; exit 1; }
echo "$mt" | json '({source_addr: j.source_addr, destination_addr: j.destination_addr, data_coding: j.data_coding, registered_delivery: j.registered_delivery,
	text: Buffer.from(j.short_message_hex, "hex").toString("latin1"), message_id: j.message_id})'
echo "From the proxy number $proxy to the host, the same text: nothing of +15550100101."

step "the delivery receipt: the relayed message as Veil recorded it (GET /v1/messages/{id})"
out_id=""
for _ in $(seq 100); do
	./bin/veilctl sessions interactions -id "$sid" > "$work/sms.json"
	out_id="$(json '(j.interactions.find(i => i.message && i.message.direction === "out" && i.message.status === "delivered") || {id: ""}).id' < "$work/sms.json")"
	[ -n "$out_id" ] && break
	sleep 0.1
done
if [ -z "$out_id" ]; then
	cat "$work/sms.json"; tail -20 "$work/veild.log"; echo "demo: no delivery receipt for the relayed SMS" >&2; exit 1
fi
./bin/veilctl messages get "$out_id"
echo "Delivered: the SMSC's receipt (deliver_sm, stat:DELIVRD) matched the part by its carrier id."

step "the marketplace sends a notification itself (POST /v1/messages from $proxy)"
./bin/veilctl messages send -from "$proxy" -to +15550100102 -body "Your host confirmed booking-42." | tee "$work/sent.json"
api_id="$(json 'j.id' < "$work/sent.json")"
for _ in $(seq 100); do
	./bin/veilctl messages get "$api_id" > "$work/api_msg.json"
	grep -q '"status": "delivered"' "$work/api_msg.json" && break
	sleep 0.1
done
json '({id: j.id, status: j.status, parts: j.parts})' < "$work/api_msg.json"

step "a second session for the same pair needs a second number: the API says so"
./bin/veilctl sessions create -a +15550100101 -b +15550100102 || true

step "open sessions"
./bin/veilctl sessions list -state open

step "stop veild (SIGTERM drains and exits 0)"
kill -TERM "$pid"
wait "$pid" && echo "veild exited 0"
pid=""
