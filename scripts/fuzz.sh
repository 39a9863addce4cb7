#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each (default 5s).
#
# A real failure writes its input under the package's testdata/fuzz/ and
# says so. Go's fuzz coordinator can also end a short run with a bare
# "context deadline exceeded" when the time runs out while a worker is busy
# with a slow input; that is not a finding, so such a run is retried once
# and only fails if it happens again.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-5s}"
status=0
out="$(mktemp)"
trap 'rm -f "$out"' EXIT

run() { # pkg name
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" -fuzzminimizetime 3s "$1" 2>&1 | tee "$out"
	return "${PIPESTATUS[0]}"
}

while IFS= read -r line; do
	file="${line%%:*}"
	name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")"
	pkg="./$(dirname "$file")"
	echo "fuzz: $pkg $name for $t"
	if run "$pkg" "$name"; then
		continue
	fi
	if ! grep -q "Failing input written" "$out" && grep -q "context deadline exceeded" "$out"; then
		echo "fuzz: $name stopped on the fuzzer's own deadline, not a finding; running it once more"
		run "$pkg" "$name" && continue
	fi
	status=1
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's|^\./||')
exit $status
