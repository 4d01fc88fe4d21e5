#!/bin/sh
# Installs the Debian packages the build and the tests need, when missing.
# As root: apt-get. Otherwise: prints the command to run and fails.
set -eu
# The tests also use gnuplot (--plot), mandoc and man-db (the man pages), systemd
# (systemd-analyze verify of the unit), GNU parallel (the several-hosts recipe of the load
# client, tested with network namespaces): installed here so they run rather than skip.
PKGS="make gcc clang clang-format libclang-rt-14-dev pkg-config libevent-dev libcmocka-dev iproute2 python3 nftables procps valgrind util-linux gnuplot-nox mandoc man-db systemd parallel"
missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "missing packages:$missing" >&2
	echo "install them with: sudo apt-get install$missing" >&2
	exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >&2
