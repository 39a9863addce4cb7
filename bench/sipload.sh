#!/usr/bin/env bash
# bench/sipload.sh: SIP load through the real veild (issue 3). Run by hand,
# as root for the socket-buffer sysctls and the network namespace; not a test.
#
#   bench/sipload.sh                      # default ramp, 30 s per step
#   DURATION=5 RATES="100 300" bench/sipload.sh   # a quick check
#   make bench-sip                        # the same as the first line
#
# SIPp "origin" carrier (127.0.0.3:5060, the UAC) calls the proxy number
# +15550100001 from callers that each have a masking session on it; veild
# resolves the session and calls the other participant through the "callee"
# carrier (a SIPp UAS on 127.0.0.1), relaying media through its own ports
# (no RTP is sent). For each rate of RATES the UAC runs DURATION seconds at
# that rate; the ramp stops at the first step with a failed call or an
# achieved rate under 95% of the target. Prints, per step: target and
# achieved calls/s, calls ok and failed, post-dial delay (INVITE to first
# 180, as the caller sees it) p50/p90/p99, veild and SIPp CPU, veild's CPU
# time per call and the load average; then the highest rate with 0 failed
# calls, and veild's own /metrics histogram.
#
# Environment (defaults in brackets):
#   RATES     calls/s to try, in order       [250 500 1000 1500 2000 2500]
#   DURATION  seconds of calls per step       [30]
#   HOLD_MS   answered-call hold before BYE   [1000]
#   SESSIONS  masking sessions (callers)      [1000]
#   TRACE     1: SIPp -trace_msg on both sides (only for tiny runs)
#   PROFILE   1: CPU profile of the middle third of each step, a heap
#             profile (after a GC) and /metrics near its end (cpu.pprof, heap.pprof,
#             metrics.txt in the step directory; go tool pprof bin/veild FILE)
#   OUT       directory for the run's files   [a new /tmp/veil-sipload-*]
#   NETNS     0: stay on the host's loopback  [1: private netns when root]
#   SKIP_BUILD 1: use the binaries in bin/ as they are
#
# Everything runs on loopback; every process started here is stopped on
# exit (trap), by PID. The run directory (SIPp CSVs, logs, veild.log) is
# kept and its path printed; veild's data_dir inside it is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

RATES="${RATES:-250 500 1000 1500 2000 2500}"
DURATION="${DURATION:-30}"
HOLD_MS="${HOLD_MS:-1000}"
SESSIONS="${SESSIONS:-1000}"
TRACE="${TRACE:-0}"
PROFILE="${PROFILE:-0}"
BUF=8388608
PROXY="+15550100001"

log() { printf 'sipload: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v sipp >/dev/null || die "sipp not found (apt-get install -y sip-tester)"
[ "$SESSIONS" -ge 1 ] && [ "$SESSIONS" -le 10000 ] || die "SESSIONS must be 1..10000"

# ---------------------------------------------------------------- outer part
# Build, raise the kernel's socket-buffer maxima (restored on exit) and the
# open-file limit, then run the rest in a loopback-only network namespace.
if [ -z "${SIPLOAD_INNER:-}" ]; then
	if [ "${SKIP_BUILD:-0}" != 1 ]; then
		log "building bin/veild bin/veilctl"
		go build -o bin/ ./cmd/veild ./cmd/veilctl
	fi
	old_rmem="" old_wmem=""
	restore() {
		if [ -n "$old_rmem" ]; then
			sysctl -q -w net.core.rmem_max="$old_rmem" net.core.wmem_max="$old_wmem" >/dev/null 2>&1 &&
				log "restored net.core.rmem_max=$old_rmem wmem_max=$old_wmem"
		fi
	}
	trap restore EXIT
	cur_r="$(cat /proc/sys/net/core/rmem_max)" cur_w="$(cat /proc/sys/net/core/wmem_max)"
	if [ "$cur_r" -ge "$BUF" ] && [ "$cur_w" -ge "$BUF" ]; then
		log "net.core.rmem_max=$cur_r wmem_max=$cur_w: already >= $BUF"
	elif [ "$(id -u)" = 0 ] && sysctl -q -w net.core.rmem_max="$(( cur_r > BUF ? cur_r : BUF ))" \
		net.core.wmem_max="$(( cur_w > BUF ? cur_w : BUF ))" >/dev/null 2>&1; then
		old_rmem="$cur_r" old_wmem="$cur_w"
		log "sysctl: net.core.rmem_max $cur_r -> $(cat /proc/sys/net/core/rmem_max), wmem_max $cur_w -> $(cat /proc/sys/net/core/wmem_max) (restored on exit)"
	else
		log "WARNING: cannot raise net.core.rmem_max/wmem_max ($cur_r/$cur_w, not root?): the kernel caps socket buffers there and may drop datagrams at high rates"
	fi
	nofile_before="$(ulimit -n)"
	ulimit -Hn "$(cat /proc/sys/fs/nr_open 2>/dev/null || echo 1048576)" 2>/dev/null || true
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
	log "ulimit -n: $nofile_before -> $(ulimit -n)"
	export SIPLOAD_INNER=1
	rc=0
	if [ "${NETNS:-1}" = 1 ]; then
		./scripts/netns.sh "$0" "$@" || rc=$?
	else
		log "NETNS=0: running on the host's loopback"
		"$0" "$@" || rc=$?
	fi
	exit "$rc"
fi

# ---------------------------------------------------------------- inner part
[ -x bin/veild ] && [ -x bin/veilctl ] || die "bin/veild and bin/veilctl missing (run without SKIP_BUILD)"
ip -o addr show lo 2>/dev/null | grep -q 127.0.0.1 || ip link set lo up 2>/dev/null || true

RUN="${OUT:-$(mktemp -d -t veil-sipload-XXXXXX)}"
mkdir -p "$RUN"
RUN="$(cd "$RUN" && pwd)"
veild_pid="" uas_pid="" uac_pid=""

stop_pid() { # pid signal
	local p="$1" sig="$2" i
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	kill "-$sig" "$p" 2>/dev/null || true
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; fi
	wait "$p" 2>/dev/null || true
}
cleanup() {
	stop_pid "$uac_pid" INT
	stop_pid "$sampler_pid" TERM
	stop_pid "$uas_pid" INT
	stop_pid "$veild_pid" TERM
	rm -rf "$RUN/data"
	log "run directory: $RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A UDP port on 127.0.0.1 outside the media range, free now.
used_udp="$(ss -Hluntp 2>/dev/null | awk '{print $5}')"
pick_port() { # first free port from $1 up
	local p="$1"
	while grep -qE "[:.]$p\$" <<<"$used_udp"; do p=$((p + 1)); done
	used_udp+=$'\n'"127.0.0.1:$p"
	echo "$p"
}
SIP_PORT="$(pick_port 61060)"
UAS_PORT="$(pick_port 61070)"
UAS_MP="$(pick_port 61080)"
UAC_PORT=5060 # the origin carrier's address: 127.0.0.3:5060
UAC_MP=61090
# A fixed admin port, not 127.0.0.1:0: at log level warn veild does not
# print its "veild ready" line (info), so readiness is polled on /healthz.
ADMIN_PORT="$(pick_port 61100)"
MEDIA_MIN=16000 MEDIA_MAX=60998

cat >"$RUN/veil.yaml" <<EOF
# written by bench/sipload.sh
data_dir: $RUN/data
log: {level: warn, format: text}
admin: {listen: "127.0.0.1:$ADMIN_PORT"}
sip:
  listen: ["udp://127.0.0.1:$SIP_PORT"]
  ring_timeout: 10s
  max_call_duration: 10m
  socket_buffer: $BUF
media:
  address: 127.0.0.1
  port_min: $MEDIA_MIN
  port_max: $MEDIA_MAX
  media_timeout: 120s # no RTP in this bench; calls last HOLD_MS
sessions: {default_ttl: 2h, sweep_interval: 1s}
shutdown: {drain_delay: 10ms, drain_timeout: 5s}
carriers:
  - name: origin
    sip: {address: "127.0.0.3:$UAC_PORT", inbound_cidrs: ["127.0.0.3/32"]}
  - name: callee
    sip: {address: "127.0.0.1:$UAS_PORT"}
EOF

export VEIL_ADMIN_TOKEN="sipload-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
./bin/veild -config "$RUN/veil.yaml" 2>"$RUN/veild.log" &
veild_pid=$!
addr="127.0.0.1:$ADMIN_PORT" ready=""
for _ in $(seq 300); do
	if curl -fsS -o /dev/null "http://$addr/healthz" 2>/dev/null; then ready=1; break; fi
	kill -0 "$veild_pid" 2>/dev/null || { cat "$RUN/veild.log" >&2; die "veild exited"; }
	sleep 0.1
done
[ -n "$ready" ] || { cat "$RUN/veild.log" >&2; die "veild not ready after 30 s"; }
export VEIL_URL="http://$addr" VEIL_TOKEN="$VEIL_ADMIN_TOKEN"
log "veild $(./bin/veild version 2>&1 | head -1) up: admin $VEIL_URL, sip udp://127.0.0.1:$SIP_PORT, pid $veild_pid"

# Number and sessions.
./bin/veilctl numbers add -number "$PROXY" -carrier callee >"$RUN/number.json"
log "creating $SESSIONS sessions on $PROXY"
t0=$(date +%s.%N)
seq 0 $((SESSIONS - 1)) | xargs -P 16 -I{} sh -c \
	'n=$(printf %04d {}); ./bin/veilctl sessions create -a +1555020$n -b +1555030$n -proxy '"$PROXY"' -ttl 2h >/dev/null 2>>"'"$RUN"'/sessions.err" && echo ok' \
	>"$RUN/sessions.ok" || true
made="$(grep -c ok "$RUN/sessions.ok" || true)"
[ "$made" = "$SESSIONS" ] || { head -5 "$RUN/sessions.err" >&2; die "only $made of $SESSIONS sessions created"; }
log "$made sessions in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
{
	echo SEQUENTIAL
	for i in $(seq 0 $((SESSIONS - 1))); do printf '+1555020%04d;%s\n' "$i" "$PROXY"; done
} >"$RUN/callers.csv"

TRACE_ARGS=()
[ "$TRACE" = 1 ] && TRACE_ARGS=(-trace_msg)

# The callee's carrier: answers everything until stopped.
mkdir -p "$RUN/uas"
(cd "$RUN/uas" && exec sipp -sf "$ROOT/bench/sipp/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -mp "$UAS_MP" \
	-buff_size "$BUF" -nostdin -recv_timeout 60000 -trace_err -error_file "$RUN/uas/errors.log" \
	-trace_stat -stf "$RUN/uas/stat.csv" -fd 1 "${TRACE_ARGS[@]}" >"$RUN/uas/screen.log" 2>&1) &
uas_pid=$!
sleep 0.5
kill -0 "$uas_pid" 2>/dev/null || { cat "$RUN/uas/screen.log" >&2; die "SIPp UAS exited"; }

CLK="$(getconf CLK_TCK)"
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
children_cpu() { # CPU seconds of this shell's waited-for children (SIPp UAC)
	awk -v k="$CLK" '{ print ($16 + $17) / k }' "/proc/$$/stat"
}
metric() { # sum of a metric's samples whose line matches $1
	curl -fsS "$VEIL_URL/metrics" | awk -v re="$1" '$0 ~ re && $1 !~ /^#/ { s += $NF } END { print s + 0 }'
}
wait_idle() { # until veild has no call in progress (max 30 s)
	local i a
	for i in $(seq 300); do
		a="$(metric '^veil_calls_active ')"
		[ "${a%.*}" = 0 ] && return 0
		sleep 0.1
	done
	log "WARNING: veil_calls_active still $a after 30 s"
}
udp_errs() { # kernel UDP receive-buffer + send-buffer drops in this network namespace
	awk '$1 == "Udp:" { if (!h) { for (i = 2; i <= NF; i++) n[$i] = i; h = 1 } else print $n["RcvbufErrors"] + $n["SndbufErrors"] }' /proc/net/snmp
}
sock_drops() { # kernel drops counted on the UDP socket bound to 127.0.0.1:$1
	awk -v port="$1" 'function hex(h, i, n) { for (i = 1; i <= length(h); i++) n = n * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1; return n }
		NR > 1 { split($2, a, ":"); if (a[1] == "0100007F" && hex(a[2]) == port) d += $NF } END { print d + 0 }' /proc/net/udp
}
sample() { # every 0.5 s until killed: max veil_calls_active and process_open_fds, into $1
	local ca=0 fd=0 a f
	while :; do
		read -r a f < <(curl -fsS --max-time 2 "$VEIL_URL/metrics" 2>/dev/null |
			awk '/^veil_calls_active / { a = $2 } /^process_open_fds / { f = $2 } END { printf "%d %d\n", a, f }') || true
		[ "${a:-0}" -gt "$ca" ] && ca="$a"
		[ "${f:-0}" -gt "$fd" ] && fd="$f"
		echo "$ca $fd" >"$1"
		sleep 0.5
	done
}
sampler_pid=""
col() { # value of column named $2 in the last line of ;-separated CSV $1
	awk -F';' -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i } END { if (c) print $c + 0; else print "?" }' "$1"
}
pct() { # percentile $1 (0-100) of the sorted numbers in file $2
	awk -v p="$1" '{ v[NR] = $1 } END { if (NR == 0) { print "-"; exit } i = int(NR * p / 100 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; printf "%d", v[i] }' "$2"
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
log "load average before: $load_before (nproc $(nproc))"
log "steps: RATES=\"$RATES\" DURATION=${DURATION}s HOLD_MS=$HOLD_MS SESSIONS=$SESSIONS"

ROWS=() best=0 stop_reason="all steps passed"
for rate in $RATES; do
	step="$RUN/step-$rate"
	mkdir -p "$step"
	calls=$((rate * DURATION))
	limit=$((rate * (HOLD_MS / 1000 + 10)))
	wait_idle
	curl -fsS "$VEIL_URL/metrics" | grep '^veil_calls_total' >"$step/calls_before.txt" || true
	la0="$(cut -d" " -f1 /proc/loadavg)"
	u0="$(udp_errs)" d0="$(sock_drops "$SIP_PORT")" e0="$(sock_drops "$UAS_PORT")" v0="$(proc_ticks "$veild_pid")" s0="$(proc_ticks "$uas_pid")" c0="$(children_cpu)" w0="$(date +%s.%N)"
	log "step $rate cps: $calls calls over ${DURATION}s"
	rc=0
	(cd "$step" && exec sipp 127.0.0.1:"$SIP_PORT" -sf "$ROOT/bench/sipp/uac.xml" -inf "$RUN/callers.csv" \
		-i 127.0.0.3 -p "$UAC_PORT" -mp "$UAC_MP" -r "$rate" -rp 1000 -m "$calls" -l "$limit" -d "$HOLD_MS" \
		-buff_size "$BUF" -nostdin -recv_timeout 15000 -timeout "$((DURATION + 90))s" -timeout_error \
		-trace_stat -stf "$step/stat.csv" -fd 1 -trace_rtt -rtt_freq 1 \
		-trace_err -error_file "$step/errors.log" -trace_logs -log_file "$step/rejected.log" \
		"${TRACE_ARGS[@]}" >"$step/screen.log" 2>&1) &
	uac_pid=$!
	echo "0 0" >"$step/max.txt"
	sample "$step/max.txt" &
	sampler_pid=$!
	prof_pid=""
	if [ "$PROFILE" = 1 ]; then # CPU profile of the step's middle third, heap near its end
		(sleep "$((DURATION / 3))" &&
			curl -fsS -H "Authorization: Bearer $VEIL_ADMIN_TOKEN" -o "$step/cpu.pprof" "$VEIL_URL/debug/pprof/profile?seconds=$((DURATION / 3))" &&
			sleep "$((DURATION / 4))" &&
			curl -fsS -H "Authorization: Bearer $VEIL_ADMIN_TOKEN" -o "$step/heap.pprof" "$VEIL_URL/debug/pprof/heap?gc=1" &&
			curl -fsS -o "$step/metrics.txt" "$VEIL_URL/metrics") &
		prof_pid=$!
	fi
	wait "$uac_pid" || rc=$?
	uac_pid=""
	stop_pid "$sampler_pid" TERM
	sampler_pid=""
	[ -z "$prof_pid" ] || wait "$prof_pid" || log "WARNING: profiling the step failed"
	read -r max_active max_fds <"$step/max.txt"
	max_fds_limit="$(awk '/^Max open files/ { print $4 }' "/proc/$veild_pid/limits" 2>/dev/null || echo "?")"
	w1="$(date +%s.%N)" c1="$(children_cpu)" v1="$(proc_ticks "$veild_pid")" s1="$(proc_ticks "$uas_pid")" u1="$(udp_errs)" d1="$(sock_drops "$SIP_PORT")" e1="$(sock_drops "$UAS_PORT")"
	drops="$((u1 - u0)) (veild SIP $((d1 - d0)), UAS $((e1 - e0)))"
	rss="$(awk '/^VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$veild_pid/status" 2>/dev/null || echo "?")"
	wait_idle
	curl -fsS "$VEIL_URL/metrics" | grep '^veil_calls_total' >"$step/calls_after.txt" || true

	peers_ok=1
	for p in "$veild_pid" "$uas_pid"; do kill -0 "$p" 2>/dev/null || peers_ok=""; done
	ok="$(col "$step/stat.csv" 'SuccessfulCall(C)')"
	failed="$(col "$step/stat.csv" 'FailedCall(C)')"
	created="$(col "$step/stat.csv" 'TotalCallCreated')"
	# Calls veild answered with a final error: uac.xml ACKs them and logs
	# "rejected CODE"; SIPp counts them successful, they are not.
	rejected="$(grep -c '^rejected' "$step/rejected.log" 2>/dev/null || true)"
	rejected="${rejected:-0}"
	[ "$ok" != "?" ] || ok=0
	[ "$failed" != "?" ] || failed=0
	ok=$((ok - rejected)) failed=$((failed + rejected))
	rtt="$(ls "$step"/*_rtt.csv 2>/dev/null | head -1 || true)"
	# rtt CSV: Date_ms;response_time;rtd_no (first line a header).
	: >"$step/pdd.txt"
	achieved="0"
	if [ -n "$rtt" ]; then
		awk -F';' 'NR > 1 && $3 ~ /1/ { print $2 }' "$rtt" | sort -n >"$step/pdd.txt"
		# Achieved rate: calls that reached the first 180, per second, from
		# the first to the last (the rate veild actually took calls at).
		achieved="$(awk -F';' 'NR > 1 && $3 ~ /1/ { n++; t = $1 + 0; if (n == 1 || t < a) a = t; if (t > b) b = t }
			END { if (n > 1 && b > a) printf "%.0f", (n - 1) * 1000 / (b - a); else print 0 }' "$rtt")"
	fi
	wall="$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", b - a }')"
	vcpu="$(awk -v d="$((v1 - v0))" -v k="$CLK" -v w="$wall" 'BEGIN { printf "%.0f", 100 * d / k / w }')"
	# veild's CPU time per call of the step: steadier than the CPU % on a
	# shared machine (it does not depend on how much CPU veild was given).
	cpums="$(awk -v d="$((v1 - v0))" -v k="$CLK" -v n="$created" 'BEGIN { if (n + 0 > 0) printf "%.2f", 1000 * d / k / n; else print "-" }')"
	ucpu="$(awk -v a="$c0" -v b="$c1" -v w="$wall" 'BEGIN { printf "%.0f", 100 * (b - a) / w }')"
	scpu="$(awk -v d="$((s1 - s0))" -v k="$CLK" -v w="$wall" 'BEGIN { printf "%.0f", 100 * d / k / w }')"
	p50="$(pct 50 "$step/pdd.txt")" p90="$(pct 90 "$step/pdd.txt")" p99="$(pct 99 "$step/pdd.txt")"
	# Final responses that failed calls (from SIPp's error file) and
	# veild's end reasons other than hangups during the step.
	codes="$({ grep -oE "Aborting call on unexpected message.*received 'SIP/2.0 [0-9]{3}" "$step/errors.log" 2>/dev/null || true
		grep -oE '^rejected [0-9]{3}' "$step/rejected.log" 2>/dev/null || true; } | grep -oE '[0-9]{3}$' | sort | uniq -c | awk '{printf "%s%s:%s", sep, $2, $1; sep=","}' || true)"
	for f in FailedTimeoutOnRecv FailedMaxUDPRetrans FailedCmdNotSent FailedOutboundCongestion; do
		n="$(col "$step/stat.csv" "$f(C)")"
		[ "$n" = 0 ] || [ "$n" = "?" ] || codes="${codes:+$codes,}${f#Failed}:$n"
	done
	reasons="$(join -j1 -a2 -e0 -o 0,1.2,2.2 <(sed 's/ /\t/' "$step/calls_before.txt" | sort) <(sed 's/ /\t/' "$step/calls_after.txt" | sort) 2>/dev/null |
		awk '$1 !~ /hangup/ && $3 - $2 > 0 { match($1, /reason="[^"]*"/); printf "%s%s:%d", sep, substr($1, RSTART + 8, RLENGTH - 9), $3 - $2; sep="," }' || true)"
	[ -n "$codes" ] || codes="-"
	[ -n "$reasons" ] || reasons="-"
	ROWS+=("$(printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s%% | %s | %s%% | %s%% | %s | %s | %s / %s | %s | %s | %s | %s |' \
		"$rate" "$la0" "$achieved" "$ok" "$failed" "$p50" "$p90" "$p99" "$vcpu" "$cpums" "$ucpu" "$scpu" "$drops" "$max_active" "$max_fds" "$max_fds_limit" "$rss" "$codes" "$reasons" "$rc")")
	log "step $rate cps: sipp exit $rc, created $created, ok $ok, failed $failed, achieved $achieved cps, PDD p50/p90/p99 $p50/$p90/$p99 ms, veild CPU $vcpu% ($cpums ms/call), load $la0, SIPp UAC $ucpu% UAS $scpu%, UDP drops $drops, max active $max_active, max fds $max_fds/$max_fds_limit, wall ${wall}s"
	if [ -z "$peers_ok" ]; then
		stop_reason="stopped at $rate cps: veild or the SIPp UAS exited during the step (see $RUN/veild.log, $RUN/uas/screen.log)"
		log "$stop_reason"
		break
	fi
	if [ "$failed" != 0 ] || [ "$rc" != 0 ] || [ "$ok" != "$calls" ]; then
		stop_reason="stopped at $rate cps: $failed failed calls, $ok of $calls ok, SIPp exit $rc"
		break
	fi
	if [ "$achieved" -lt $((rate * 95 / 100)) ]; then
		stop_reason="stopped at $rate cps: achieved only $achieved cps (< 95%)"
		break
	fi
	best="$rate"
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "## veild SIP load: $(date -u '+%Y-%m-%d %H:%M UTC'), nproc $(nproc), hold ${HOLD_MS} ms, ${DURATION} s per step"
echo
echo "| target cps | load avg (1 min) at start | achieved cps | calls ok | failed | PDD p50 ms | PDD p90 ms | PDD p99 ms | veild CPU | veild CPU ms per call | SIPp UAC CPU | SIPp UAS CPU | UDP buffer drops | veild max calls active | veild max open fds / limit | veild peak RSS MiB | failed by SIP code / SIPp reason | veild end reasons (not hangup) | SIPp exit |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
printf '%s\n' "${ROWS[@]}"
echo
echo "load average: before $load_before, after $load_after"
echo "$stop_reason"
echo "highest rate with 0 failed calls over ${DURATION} s: $best cps"
echo
echo "veild /metrics (whole run):"
curl -fsS "$VEIL_URL/metrics" | grep -E '^veil_call_post_dial_delay_seconds|^veil_calls_total' | sed 's/^/  /'
curl -fsS "$VEIL_URL/metrics" | awk '
	/^veil_call_post_dial_delay_seconds_bucket/ { match($0, /le="[^"]*"/); le[++n] = substr($0, RSTART + 4, RLENGTH - 5); c[n] = $NF }
	/^veil_call_post_dial_delay_seconds_count/ { tot = $NF }
	END { if (!tot) exit; printf "  veild PDD (INVITE in to first 18x/200 from the callee side), %d calls:\n", tot
	      prev = 0; for (i = 1; i <= n; i++) { printf "    <= %-5s s: %8d  (%5.1f%% cumulative)\n", le[i], c[i] - prev, 100 * c[i] / tot; prev = c[i] } }'
