#!/bin/sh
# make bench-deps: the Debian packages of the bench's peers (tests/bench/peers.py), when
# missing: libuv1-dev (uv-echo), golang-go (go-echo), nodejs (node-echo), python3-uvloop
# (uvloop-echo), strace (system calls per message). Never fails the bench: a peer whose
# package cannot be installed is skipped by bench.py, which says why.
set -u
PKGS="libuv1-dev golang-go nodejs python3-uvloop strace"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "bench-deps: missing:$missing; the bench skips those peers" >&2
	echo "bench-deps: install them with: sudo apt-get install$missing" >&2
	exit 0
fi
echo "bench-deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq >&2 &&
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2; }; then
	echo "bench-deps: apt-get failed; the bench skips the peers it could not install" >&2
fi
exit 0
