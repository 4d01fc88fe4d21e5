/* stats: the server's counters. One close reason per connection; the FIN-to-close
 * histogram measures from the moment the server learned of the peer's FIN (recv()==0 or
 * EPOLLRDHUP) to its close().
 *
 * Every field of struct stats is described once, in stats_fields (stats.c): its key in the
 * counters line, how workers' figures merge, and its Prometheus family and help. The
 * counters line (stats_json), the merge (stats_add_counters, stats_add_gauges) and the
 * /metrics page (metrics_text.c) are driven by that table: a new counter is one field
 * here and one row there (tests/unit/test_stats.c fails when a field has no row). */
#ifndef TEARDOWN_SERVER_STATS_H
#define TEARDOWN_SERVER_STATS_H

#include "hist.h"

#include <stddef.h>
#include <stdint.h>

enum close_reason {
	CLOSE_EOF = 0,	     /* the peer's FIN, echo flushed */
	CLOSE_RESET,	     /* ECONNRESET, EPIPE */
	CLOSE_TIMEOUT,	     /* ETIMEDOUT, EHOSTUNREACH, ENETUNREACH: keepalive/user timeout */
	CLOSE_HEARTBEAT,     /* nothing received for heartbeat_timeout */
	CLOSE_WRITE_TIMEOUT, /* queued echo made no progress for write_timeout */
	CLOSE_FIN_TIMEOUT,   /* half-closed peer not reading its echo for fin_timeout */
	CLOSE_OVERLOAD,	     /* above max_connections */
	CLOSE_SHUTDOWN,	     /* graceful drain */
	CLOSE_ERROR,	     /* any other errno */
	CLOSE_MAX_AGE,	     /* older than max_connection_age: ended like a drained one */
	CLOSE_NREASONS
};

struct stats {
	uint64_t open;
	uint64_t accepted;
	uint64_t closed[CLOSE_NREASONS];
	uint64_t bytes_in;
	uint64_t bytes_out;
	uint64_t emfile_pauses; /* listener paused after EMFILE/ENFILE with a client waiting */
	uint64_t shed;		/* connections accepted and closed at once to drain the queue */
	uint64_t eof_ignored;	/* leaky mode: recv()==0 seen and ignored */
	/* Open fds that are neither connections nor the server's own (watchdog.c); -1 when
	 * not measured. A gauge, refreshed before each counters line. */
	int64_t fd_unaccounted;
	struct hist fin_to_close_us;
	/* With workers, summed by the parent and worker 0 only (slots.c): connections open in a
	 * worker when it died (accepted = closed + lost + open), and deaths found in the middle
	 * of counting an accept or a close (that one connection's fate is unknown). */
	uint64_t lost;
	uint64_t lost_unknown;
	/* How late the event loop ran: a 100 ms timer's lateness, in microseconds, and the
	 * worst since start (looplag.c). */
	struct hist loop_lag_us;
	uint64_t loop_lag_max_us;
	/* Log lines this process dropped because stderr did not take them (log.c); copied
	 * from log_dropped_lines() when the figures are published or rendered. */
	uint64_t log_dropped;
	/* Each connection's life, accept to close, in microseconds (max_connection_age shows
	 * here), and the connections still waiting for their drain_spread turn (a gauge). */
	struct hist conn_duration_us;
	uint64_t drain_left;
	/* This generation's facts (upgrade.h, lifecycle.c): its number (1 at the first start,
	 * one more at each upgrade), its start (Unix seconds), the last reload's result (1
	 * before any) and time (Unix seconds, 0 before any). Every process of a generation has
	 * the same, so they merge as the largest; the /metrics page shows its own process's. */
	uint64_t generation;
	uint64_t start_time_s;
	uint64_t reload_ok;
	uint64_t reload_time_s;
	/* sock_diag censuses of the port this process took (with workers: worker 0's). */
	uint64_t censuses;
};

/* How a field of struct stats merges and is reported. */
enum stats_kind {
	STATS_COUNTER,	 /* uint64_t, summed over workers; a Prometheus counter */
	STATS_REASONS,	 /* uint64_t[CLOSE_NREASONS], likewise; one sample per reason */
	STATS_HIST,	 /* struct hist of microseconds, merged; a histogram in seconds */
	STATS_MAX,	 /* uint64_t, merged as the largest */
	STATS_GAUGE,	 /* uint64_t, this moment's: summed by stats_add_gauges only */
	STATS_GAUGE_I64, /* int64_t, -1 when not measured; likewise */
};

/* A histogram bucket's upper bound: the Prometheus le label (seconds) and in microseconds. */
struct stats_bound {
	const char *le;
	uint64_t us;
};

struct stats_field {
	const char *key; /* in the counters line (for STATS_HIST: an object of count, p50,
			  * p99, p999, max); NULL: not in it */
	size_t offset;	 /* in struct stats */
	enum stats_kind kind;
	const char *prom; /* Prometheus family name; NULL: not on the /metrics page */
	const char *help; /* its HELP text */
	const struct stats_bound *bounds; /* STATS_HIST on the page: the le buckets */
	size_t nbounds;
};

extern const struct stats_field stats_fields[];
extern const size_t stats_nfields;
extern const struct stats_bound stats_fin_bounds[];
extern const size_t stats_nfin_bounds;
extern const struct stats_bound stats_lag_bounds[];
extern const size_t stats_nlag_bounds;

/* The field's value (STATS_REASONS: the first reason's) as stored in s. */
#define STATS_AT(s, f, type)	   ((type *)((char *)(s) + (f)->offset))
#define STATS_AT_CONST(s, f, type) ((const type *)((const char *)(s) + (f)->offset))

const char *stats_reason_name(enum close_reason r);
/* The reason for a failed read/write. */
enum close_reason stats_reason_for_errno(int err);
/* One JSON object (no newline) into buf; returns buf. */
const char *stats_json(const struct stats *s, char *buf, size_t len);
/* Adds the counters of b into a: counters and histograms summed, maxima kept (not the
 * gauges: open, fd_unaccounted, drain_left). */
void stats_add_counters(struct stats *a, const struct stats *b);
/* Adds the gauges of b into a (another live worker's, for a sum over workers). */
void stats_add_gauges(struct stats *a, const struct stats *b);
/* Logs "counters {json}" whatever the log level. */
void stats_log(const struct stats *s);

#endif
