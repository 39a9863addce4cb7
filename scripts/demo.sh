#!/usr/bin/env bash
# make demo: start veild on a fresh embedded store, put a proxy number in
# the pool, open a masking session between a guest and a host through the
# admin API, show it, and stop the daemon with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

work="$(mktemp -d -t veil-demo-XXXXXX)"
pid=""
cleanup() {
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

step "a second session for the same pair needs a second number: the API says so"
./bin/veilctl sessions create -a +15550100101 -b +15550100102 || true

step "open sessions"
./bin/veilctl sessions list -state open

step "stop veild (SIGTERM drains and exits 0)"
kill -TERM "$pid"
wait "$pid" && echo "veild exited 0"
pid=""
