#!/usr/bin/env bash
# Runs a command in a private network namespace that has only loopback, so
# no test traffic can leave the machine even by mistake. Falls back to
# running it directly (saying so) where namespaces are not allowed.
set -euo pipefail
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare --net true 2>/dev/null; then
	exec unshare --net -- sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$@"
fi
echo "netns: no private network namespace here; running on the host's loopback" >&2
exec "$@"
