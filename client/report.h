/* report: the final table (stdout), the --json document, and reading it back for merge.
 *
 * JSON layout (version 1):
 *   {"version":1, "run":{...how it was run; "reconnect":{delay_ms, rate} with it...},
 *    "counts":{attempted, connected, ..., reconnects, interrupted, ...},
 *    "by_scenario":{"echo":N,...},
 *    "dead_peers":{"crash":D, "vanish":D, "dropped_from_server":N, "dropped_to_server":N},
 *    "failures":{"connect":{"ECONNREFUSED":N,...},...},
 *    "elapsed_us":N, "parts":N,
 *    "hist":{"connect_us":H, "rtt_us":H, "fin_to_fin_us":H, "server_close_us":H},
 *    "summary":{derived percentiles and rates, for readers; ignored by merge},
 *    "census":{"client":C, "server":C}, "kernel":K, "expect":[...],
 *    "procs":[per-worker results]}
 * where D is {"count":N, "first_unix_us":T, "last_unix_us":T} (wall clock, 0 when count
 * is 0; merged as the earliest and the latest), H is common/hist.c's JSON form (exact) and
 * C is
 *   {"visible":true, "port":P, "total":N, "states":{"established":N,...}, "timers":{...},
 *    "accept_queue":N, "accept_backlog":N, "recv_q":N, "send_q":N, "elapsed_us":N}
 * or, not counted, {"visible":false, "unseen":"remote"|"no_listener"|"other_listener"|
 * "no_census", "port":P} ("unseen" and "port" are absent in older results), and K the kernel's
 * counters of the run's network namespace (client/kernel.h; once per run, not in "procs"; results
 * written before it existed read as not available). */
#ifndef TEARDOWN_REPORT_H
#define TEARDOWN_REPORT_H

#include "clockref.h"
#include "json.h"
#include "result.h"

#include <stdio.h>

struct expect_set;

/* Distinct names (servers, scenarios) of the results a merge combined, in the order
 * first seen; beyond RUN_NAMES_MAX only marked as more. */
#define RUN_NAMES_MAX 8
struct run_names {
	int n, more; /* more: there were others */
	char name[RUN_NAMES_MAX][300];
};

/* Adds name unless it is there already. */
void run_names_add(struct run_names *s, const char *name);
/* "a, b and more" into buf. */
const char *run_names_text(const struct run_names *s, char *buf, size_t len);

/* How the run was made, for the reader of a report. */
struct run_info {
	char server[300];
	char scenario[300]; /* "close" or "mixed(echo=50,close=50)" */
	uint64_t connections;
	uint64_t procs;
	int64_t duration_ms;
	uint64_t size, messages, pipeline;
	int reconnect; /* --reconnect, with its delay and rate */
	int64_t reconnect_delay_ms, reconnect_rate;
	double msg_rate; /* open loop: per connection (0: closed loop), its arrivals, backlog */
	int arrivals;
	int64_t max_backlog;
	uint32_t merged; /* > 0: a merge of that many documents */
	/* Read from a document (report_read), and of a merge: the servers and scenarios
	 * of the results (a merged document's own lists; none from older documents). */
	struct run_names servers, scenarios;
	/* The clocks of the hosts: this run's, or those of the results a merge combined. */
	struct clock_info clocks[RUN_NAMES_MAX];
	int nclocks;
};

void report_census_json(struct jw *w, const char *key, const struct census_view *v);
/* "failures": {phase: {kind: n}}; skip_empty_phases leaves out phases without any (the
 * timeline's rows); the run's JSON lists every phase. */
void report_failures_json(struct jw *w, const struct result *r, int skip_empty_phases);
/* "LISTEN 1 (accept queue 0/128), ESTABLISHED 100 (keepalive 100, next in <= 7199 s)";
 * a census not counted gives its reason; no_listener (may be NULL) is said when no socket
 * of the census listens. */
void report_census_table(FILE *f, const char *title, const struct census_view *v,
			 const char *no_listener);

/* The whole document; parts (may be NULL) are the per-worker results of --procs. */
void report_json(struct jw *w, const struct run_info *info, const struct result *r,
		 const struct result *parts, int nparts, const struct expect_set *ex);
void report_table(FILE *f, const struct run_info *info, const struct result *r,
		  const struct expect_set *ex);

/* Reads the counters, failures, histograms and censuses of a document written by
 * report_json into r (initialised here), and its servers and scenarios into info. 0, or
 * -1 with a reason. */
int report_read(struct result *r, struct run_info *info, const struct jnode *doc, char *err,
		size_t errlen);
int report_census_read(struct census_view *v, const struct jnode *n, char *err, size_t errlen);

#endif
