#!/usr/bin/env bash
# Installs what the build and tests need when it is missing. Safe to run
# again: it only acts on what is absent. "deps.sh sipp" installs only the
# SIPp carriers (what make demo needs); "deps.sh smsc" only the SMSC
# simulator of the SMS tests (Node.js, npm and e2e/smsc's npm packages).
set -euo pipefail
cd "$(dirname "$0")/.."
only="${1:-}"
case "$only" in
"" | sipp | smsc) ;;
*)
	echo "deps: unknown argument '$only' (want nothing, sipp or smsc)" >&2
	exit 2
	;;
esac

# apt_install installs Debian packages (as root, or through sudo).
apt_install() {
	local sudo=
	if [ "$(id -u)" != 0 ]; then
		sudo=sudo
	fi
	$sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@"
}

if ! command -v go >/dev/null; then
	echo "deps: Go is not installed (need Go 1.26; see README)" >&2
	exit 1
fi
gobin="$(go env GOPATH)/bin"
if [ -z "$only" ] && [ ! -x "$gobin/staticcheck" ]; then
	echo "deps: installing staticcheck"
	(cd / && GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2)
fi
# SIPp plays the carriers in the e2e call tests.
if { [ -z "$only" ] || [ "$only" = sipp ]; } && ! command -v sipp >/dev/null; then
	echo "deps: installing SIPp (sip-tester)"
	if ! apt_install sip-tester; then
		echo "deps: installing sip-tester (SIPp) failed" >&2
		exit 1
	fi
	if ! command -v sipp >/dev/null; then
		echo "deps: sip-tester installed but sipp is not on PATH" >&2
		exit 1
	fi
fi
# The SMSC simulator (e2e/smsc, on the npm package smpp) plays the SMS
# carriers in the e2e SMS tests.
if [ -z "$only" ] || [ "$only" = smsc ]; then
	if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
		echo "deps: installing Node.js and npm (for the SMSC simulator)"
		if ! apt_install nodejs npm; then
			echo "deps: installing nodejs and npm failed" >&2
			exit 1
		fi
		if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
			echo "deps: nodejs and npm installed but node or npm is not on PATH" >&2
			exit 1
		fi
	fi
	if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
		echo "deps: the SMSC simulator needs Node.js 18 or later, found $(node --version)" >&2
		exit 1
	fi
	if [ ! -f e2e/smsc/node_modules/smpp/package.json ]; then
		echo "deps: installing the SMSC simulator's npm packages (npm ci in e2e/smsc)"
		if ! (cd e2e/smsc && npm ci --no-audit --no-fund); then
			echo "deps: npm ci in e2e/smsc failed" >&2
			exit 1
		fi
	fi
fi
[ -n "$only" ] && exit 0
# Modules are downloaded here, outside the test network namespace.
go mod download
