#!/usr/bin/env bash
# Runs every Fuzz target of the module for the given time each (default 5s).
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-5s}"
status=0
while IFS= read -r line; do
	file="${line%%:*}"
	name="$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"${line#*:}")"
	pkg="./$(dirname "$file")"
	echo "fuzz: $pkg $name for $t"
	if ! go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 3s "$pkg"; then
		status=1
	fi
done < <(grep -rE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's|^\./||')
exit $status
