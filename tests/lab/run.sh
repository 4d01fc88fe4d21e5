#!/bin/sh
# Runs every tests/lab program (built by `make lab` into build/lab/) and prints the truth
# table: claim of the reference note | what Linux did | agrees / differs / nuance.
#
#   tests/lab/run.sh [--quick] [NAME ...]
#
# --quick reads the TIME_WAIT timer instead of waiting it out; NAMEs (e.g. 01_close_flush)
# run only those programs, for a fast subset.
#
# Exit status: 0 when every program ran (a disagreement with the note is a result) or was
# skipped with its reason; 1 when a program failed, timed out or printed no verdict.
# Each program makes its own anonymous network namespace, which the kernel frees when the
# program exits however it exits, so there is nothing to clean up here.
set -u

cd "$(dirname "$0")/../.." || exit 1
QUICK=""
[ "${1:-}" = "--quick" ] && QUICK="--quick" && shift
ONLY="$*"
BIN=build/lab
OUT=build/lab/out
TABLE=build/lab/truth-table.md
# Waiting out TIME_WAIT takes a minute: that program runs beside the others.
BACKGROUND="05a_timewait_length"
LIMIT=100 # seconds per program before `timeout` kills it

SYSCTLS="tcp_fin_timeout tcp_retries1 tcp_retries2 tcp_orphan_retries tcp_keepalive_time
tcp_keepalive_intvl tcp_keepalive_probes tcp_max_tw_buckets tcp_tw_reuse tcp_tw_reuse_delay
tcp_max_orphans tcp_rto_min_us tcp_rto_max_ms tcp_early_retrans tcp_syn_retries tcp_rfc1337
tcp_timestamps"

print_sysctls() {
	echo "kernel: $(uname -r)"
	echo "sysctls (net.ipv4.*): host value / value in a fresh network namespace, where every"
	echo "program starts (a new netns gets the kernel defaults, not the host's values):"
	for s in $SYSCTLS; do
		f=/proc/sys/net/ipv4/$s
		h=$(cat "$f" 2>/dev/null || echo n/a)
		if [ "$(id -u)" != 0 ]; then
			n="n/a (needs root)"
		else
			n=$(unshare --net cat "$f" 2>/dev/null || echo "n/a (not per netns)")
		fi
		printf '  %-22s %8s / %s\n' "$s" "$h" "$n"
	done
	echo
}

# run NAME: runs build/lab/NAME, output in $OUT/NAME.{out,err}, status in $OUT/NAME.rc
run() {
	if [ ! -x "$BIN/$1" ]; then
		echo "no program $BIN/$1" >"$OUT/$1.err"
		: >"$OUT/$1.out"
		echo 127 >"$OUT/$1.rc"
		return
	fi
	timeout -k 5 "$LIMIT" "$BIN/$1" $QUICK >"$OUT/$1.out" 2>"$OUT/$1.err"
	echo $? >"$OUT/$1.rc"
}

# check NAME: classifies a finished program; prints nothing, sets $state.
check() {
	rc=$(cat "$OUT/$1.rc")
	rows=$(grep -c '^row|' "$OUT/$1.out")
	bad=$(grep '^row|' "$OUT/$1.out" | grep -cvE '\|(agrees|differs|nuance|skipped)(: .*)?$')
	if [ "$rc" = 77 ] && [ "$rows" -gt 0 ]; then
		state=skipped
	elif [ "$rc" = 0 ] && [ "$rows" -gt 0 ] && [ "$bad" = 0 ]; then
		state=ran
	else
		state=failed
	fi
}

table() {
	echo "| # | claim (from the note) | what Linux did | verdict |"
	echo "|---|---|---|---|"
	for n in $NAMES; do
		grep '^row|' "$OUT/$n.out" | sed 's/^row//; s/|/ | /g; s/^ //; s/  */ /g; s/ *$/ |/'
	done
}

main() {
	start=$(date +%s)
	mkdir -p "$OUT" || exit 1
	rm -f "$OUT"/*
	NAMES=$(cd "$BIN" && ls | grep -E '^[0-9]' | sort)
	[ -z "$ONLY" ] || NAMES=$(for n in $ONLY; do echo "$NAMES" | grep -x "$n" || echo "$n"; done)
	[ -n "$NAMES" ] || { echo "no programs in $BIN: run make lab" >&2; exit 1; }
	print_sysctls
	pids=""
	for n in $BACKGROUND; do
		case " $(echo $NAMES) " in *" $n "*) run "$n" & pids="$pids $!" ;; esac
	done
	for n in $NAMES; do
		case " $BACKGROUND " in *" $n "*) continue ;; esac
		printf 'running %s ... ' "$n" >&2
		t=$(date +%s)
		run "$n"
		echo "$(($(date +%s) - t)) s" >&2
	done
	[ -z "$pids" ] || wait $pids
	table | tee "$TABLE"
	echo
	ran=0 skipped=0 failed=0
	for n in $NAMES; do
		check "$n"
		eval "$state=\$((\$$state + 1))"
		if [ "$state" = failed ]; then
			echo "FAILED $n (exit $(cat "$OUT/$n.rc")); its log:"
			tail -n 20 "$OUT/$n.err" "$OUT/$n.out"
		fi
	done
	echo "$ran ran, $skipped skipped, $failed failed; $(($(date +%s) - start)) s" \
	     "(logs in $OUT, table in $TABLE)"
	[ "$failed" = 0 ]
}

main
