/* timeline: --timeline F.jsonl, one JSON object a line, and `load-client merge` of such
 * files.
 *
 * The first line says how the run was made:
 *   {"timeline":1, "start_unix_us":T, "options":{"server":..., "scenario":..., ...}}
 * then one line per wall-clock second, when --timeline names a .jsonl file (the rows
 * come at whole seconds of the wall clock, so that the rows of runs on several hosts
 * line up):
 *   {"unix_s":S, "unix_us":U, "mono_s":M, "interval_s":D,
 *    "counts":{attempted, established, completed, failed, closed_by_server, reconnects,
 *              messages, msgs_due, late_sends, ... this second's},
 *    "now":{"open":N, "connecting":N, "closing":N, "established":N},
 *    "msgs_per_s":X, "failures":{"connect":{"ECONNREFUSED":N}, ...},
 *    "census":{"client":C, "server":C}, "rtt":{"p50_ms":X,"p99_ms":X},
 *    "latency":{...}, "hist":{"rtt_us":H, ...}, "server_metrics":{"open":N, "fds":N,
 *    "close_wait":N, "age_ms":N}}
 * The row of second S holds what completed in [S, S + 1): the counters' and the
 * histograms' (H: common/hist.c's sparse form, so merging is exact) differences since the
 * previous row; "now" and the census are the state at its end; server_metrics only with
 * --metrics. The last row (after the run's sockets settled) has "final":true and the
 * census alone. Merging sums rows of the same second as result_merge() sums results
 * (the server census: the largest count of each state; server_metrics: the largest). */
#ifndef TEARDOWN_TIMELINE_H
#define TEARDOWN_TIMELINE_H

#include "json.h"
#include "options.h"
#include "result.h"
#include "scrape.h"

#include <stdio.h>

struct tl_row {
	int64_t unix_s, unix_us;
	double mono_s, interval_s, msgs_per_s;
	int final;
	struct result r; /* this second's differences; live gauges, census: at its end */
	struct scrape_view metrics;
};

/* The first line. */
void timeline_header(FILE *f, const struct client_opts *o, int64_t start_unix_us);
/* Writes one row as a line. -1 when out of memory. */
int timeline_row_write(FILE *f, const struct tl_row *row);
/* `load-client merge A.jsonl B.jsonl ...`: the merged timeline on stdout. Exit status. */
int timeline_merge(int nfiles, char **files);

#endif
