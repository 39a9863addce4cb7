#!/usr/bin/env bash
# Installs what the build and tests need when it is missing. Safe to run
# again: it only acts on what is absent. "deps.sh sipp" installs only the
# SIPp carriers (what make demo needs).
set -euo pipefail
cd "$(dirname "$0")/.."
only="${1:-}"

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
if ! command -v sipp >/dev/null; then
	echo "deps: installing SIPp (sip-tester)"
	sudo=
	if [ "$(id -u)" != 0 ]; then
		sudo=sudo
	fi
	if ! { $sudo apt-get update && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y sip-tester; }; then
		echo "deps: installing sip-tester (SIPp) failed" >&2
		exit 1
	fi
	if ! command -v sipp >/dev/null; then
		echo "deps: sip-tester installed but sipp is not on PATH" >&2
		exit 1
	fi
fi
[ -n "$only" ] && exit 0
# Modules are downloaded here, outside the test network namespace.
go mod download
