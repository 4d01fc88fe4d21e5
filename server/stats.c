#include "stats.h"
#include "log.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* FIN-to-close: microseconds when the echo was already flushed, up to fin_timeout (30 s by
 * default) for a half-closed peer that reads slowly. */
const struct stats_bound stats_fin_bounds[] = {
    {"0.00001", 10},  {"0.000025", 25},	  {"0.00005", 50},    {"0.0001", 100},	{"0.00025", 250},
    {"0.0005", 500},  {"0.001", 1000},	  {"0.0025", 2500},   {"0.005", 5000},	{"0.01", 10000},
    {"0.025", 25000}, {"0.05", 50000},	  {"0.1", 100000},    {"0.25", 250000}, {"0.5", 500000},
    {"1", 1000000},   {"2.5", 2500000},	  {"5", 5000000},     {"10", 10000000}, {"30", 30000000},
    {"60", 60000000}, {"120", 120000000}, {"300", 300000000},
};
const size_t stats_nfin_bounds = sizeof(stats_fin_bounds) / sizeof(stats_fin_bounds[0]);

/* Event-loop lag: a few ms is the coarse clock and a busy machine; a second or more is a
 * stall (SIGSTOP, a VM pause, a slow callback) that deadlines must survive. */
const struct stats_bound stats_lag_bounds[] = {
    {"0.001", 1000},  {"0.0025", 2500}, {"0.005", 5000},  {"0.01", 10000},  {"0.025", 25000},
    {"0.05", 50000},  {"0.1", 100000},	{"0.25", 250000}, {"0.5", 500000},  {"1", 1000000},
    {"2.5", 2500000}, {"5", 5000000},	{"10", 10000000}, {"30", 30000000}, {"60", 60000000},
};
const size_t stats_nlag_bounds = sizeof(stats_lag_bounds) / sizeof(stats_lag_bounds[0]);

/* A connection's life: milliseconds (one refused at once) to days; max_connection_age N
 * shows as a step between N - jitter and N + jitter. */
static const struct stats_bound stats_duration_bounds[] = {
    {"0.001", 1000},	  {"0.01", 10000},	  {"0.1", 100000},	  {"1", 1000000},
    {"2.5", 2500000},	  {"5", 5000000},	  {"10", 10000000},	  {"30", 30000000},
    {"60", 60000000},	  {"300", 300000000},	  {"900", 900000000},	  {"1800", 1800000000},
    {"3600", 3600000000}, {"21600", 21600000000}, {"86400", 86400000000},
};

#define F(member) offsetof(struct stats, member)

/* Every field of struct stats, in the order of the counters line. The keys and the
 * Prometheus names are what users and tests read: never renamed. */
const struct stats_field stats_fields[] = {
    {.key = "open",
     .offset = F(open),
     .kind = STATS_GAUGE,
     .prom = "teardown_connections_open",
     .help = "Connections in the connection table (leaky mode: including those it never "
	     "closes)."},
    {.key = "accepted",
     .offset = F(accepted),
     .kind = STATS_COUNTER,
     .prom = "teardown_connections_accepted_total",
     .help = "Connections accepted (including those closed at once as overload)."},
    {.key = "closed",
     .offset = F(closed),
     .kind = STATS_REASONS,
     .prom = "teardown_connections_closed_total",
     .help = "Connections closed, by their one close reason."},
    {.key = "fin_to_close_us",
     .offset = F(fin_to_close_us),
     .kind = STATS_HIST,
     .prom = "teardown_fin_to_close_seconds",
     .help = "Time from learning of the peer's FIN (recv()==0 or EPOLLRDHUP) to close(), in "
	     "seconds (buckets resolved to 0.8%).",
     .bounds = stats_fin_bounds,
     .nbounds = sizeof(stats_fin_bounds) / sizeof(stats_fin_bounds[0])},
    {.key = "lost",
     .offset = F(lost),
     .kind = STATS_COUNTER,
     .prom = "teardown_connections_lost_total",
     .help = "Connections open in a worker when it died (killed, crashed): accepted = closed "
	     "+ lost + open."},
    {.key = "lost_unknown",
     .offset = F(lost_unknown),
     .kind = STATS_COUNTER,
     .prom = "teardown_connections_lost_unknown_total",
     .help = "Workers that died in the middle of counting an accept or a close: that one "
	     "connection is missing from accepted, or counted as lost though it was closed."},
    {.key = "bytes_in",
     .offset = F(bytes_in),
     .kind = STATS_COUNTER,
     .prom = "teardown_received_bytes_total",
     .help = "Bytes read from clients."},
    {.key = "bytes_out",
     .offset = F(bytes_out),
     .kind = STATS_COUNTER,
     .prom = "teardown_sent_bytes_total",
     .help = "Bytes of echo sent to clients."},
    {.key = "emfile_pauses",
     .offset = F(emfile_pauses),
     .kind = STATS_COUNTER,
     .prom = "teardown_emfile_pauses_total",
     .help = "Listener pauses after accept() failed with EMFILE/ENFILE (out of fds)."},
    {.key = "shed",
     .offset = F(shed),
     .kind = STATS_COUNTER,
     .prom = "teardown_shed_total",
     .help = "Connections accepted and closed at once to drain the accept queue while out of "
	     "fds."},
    {.key = "eof_ignored",
     .offset = F(eof_ignored),
     .kind = STATS_COUNTER,
     .prom = "teardown_eof_ignored_total",
     .help = "recv()==0 seen and ignored (close_on_eof=no, the CLOSE_WAIT bug)."},
    /* On the page as teardown_fds_unaccounted, from the watchdog's figures (metrics_text.c). */
    {.key = "fd_unaccounted", .offset = F(fd_unaccounted), .kind = STATS_GAUGE_I64},
    {.offset = F(loop_lag_us),
     .kind = STATS_HIST,
     .prom = "teardown_event_loop_lag_seconds",
     .help = "How late a timer asked to ring every 100 ms rang, against CLOCK_MONOTONIC, in "
	     "seconds: the event loop's lag (a stall shows as one late ring; summed over the "
	     "workers).",
     .bounds = stats_lag_bounds,
     .nbounds = sizeof(stats_lag_bounds) / sizeof(stats_lag_bounds[0])},
    {.key = "loop_lag_max_us", .offset = F(loop_lag_max_us), .kind = STATS_MAX},
    /* In the counters line as this process's own figure, read at the time (stats_json). */
    {.offset = F(log_dropped),
     .kind = STATS_COUNTER,
     .prom = "teardown_log_dropped_lines_total",
     .help = "Log lines dropped because stderr did not take them as fast as they came (nobody "
	     "reading the pipe, socket or terminal); the log says how many once it takes lines "
	     "again."},
    {.key = "conn_duration_us",
     .offset = F(conn_duration_us),
     .kind = STATS_HIST,
     .prom = "teardown_connection_duration_seconds",
     .help = "Each connection's life from accept to close, in seconds.",
     .bounds = stats_duration_bounds,
     .nbounds = sizeof(stats_duration_bounds) / sizeof(stats_duration_bounds[0])},
    {.key = "drain_left",
     .offset = F(drain_left),
     .kind = STATS_GAUGE,
     .prom = "teardown_drain_waiting_connections",
     .help = "Connections the drain has not given their turn yet (drain_spread; 0 when not "
	     "draining)."},
    /* On the page as teardown_build_info's generation label (metrics_text.c). */
    {.key = "generation", .offset = F(generation), .kind = STATS_MAX},
    {.offset = F(start_time_s),
     .kind = STATS_MAX,
     .prom = "teardown_start_time_seconds",
     .help = "When this generation of the server started (Unix time): an upgrade starts a new "
	     "one."},
    {.offset = F(reload_ok),
     .kind = STATS_MAX,
     .prom = "teardown_config_last_reload_successful",
     .help = "1 when the last reload (SIGHUP) applied the config, 0 when it was refused (the "
	     "log has the line); 1 before any."},
    {.offset = F(reload_time_s),
     .kind = STATS_MAX,
     .prom = "teardown_config_last_reload_timestamp_seconds",
     .help = "When the last reload was tried (Unix time; 0: none yet in this generation)."},
    {.key = "censuses",
     .offset = F(censuses),
     .kind = STATS_COUNTER,
     .prom = "teardown_censuses_total",
     .help = "sock_diag censuses of the port taken (with workers only worker 0 takes them; "
	     "each one walks every socket of the network namespace)."},
};
const size_t stats_nfields = sizeof(stats_fields) / sizeof(stats_fields[0]);

#undef F

static const char *const reason_names[CLOSE_NREASONS] = {
    "eof",	   "reset",    "timeout",  "heartbeat", "write-timeout",
    "fin-timeout", "overload", "shutdown", "error",	"max-age",
};

const char *stats_reason_name(enum close_reason r)
{
	return (unsigned)r < CLOSE_NREASONS ? reason_names[r] : "?";
}

enum close_reason stats_reason_for_errno(int err)
{
	switch (err) {
	case ECONNRESET:
	case EPIPE:
		return CLOSE_RESET;
	case ETIMEDOUT:
	case EHOSTUNREACH:
	case ENETUNREACH:
		return CLOSE_TIMEOUT;
	default:
		return CLOSE_ERROR;
	}
}

/* Heap in use by mallinfo2 (uordblks + hblkhd, mmap'd blocks included), KiB: closer to what
 * the server holds than RSS, which also counts freed memory the allocator keeps. Not exact:
 * glibc counts the free chunks its per-thread caches keep (up to 7 per size class) as in
 * use, about 230 KiB at most here (make soak runs with GLIBC_TUNABLES=
 * glibc.malloc.tcache_count=0 so that growth measures live bytes). */
static unsigned long stats_heap_kb(void)
{
	struct mallinfo2 mi = mallinfo2();

	return (unsigned long)((mi.uordblks + mi.hblkhd) / 1024);
}

/* Resident set size in KiB from /proc/self/statm (in pages, which are not 4 KiB
 * everywhere: 16 or 64 KiB on some arm64 kernels), or 0. */
static unsigned long stats_rss_kb(void)
{
	unsigned long size, resident;
	long page = sysconf(_SC_PAGESIZE);
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "%lu %lu", &size, &resident);
	fclose(f);
	return n == 2 && page > 0 ? resident * ((unsigned long)page / 1024) : 0;
}

/* Appends to buf at *n, truncating at len (n keeps counting: the caller terminates). */
static void json_append(char *buf, size_t len, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void json_append(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(buf + *n, *n < len ? len - *n : 0, fmt, ap);
	va_end(ap);
	if (r > 0)
		*n += (size_t)r;
}

static void json_field(const struct stats *s, const struct stats_field *f, char *buf, size_t len,
		       size_t *n)
{
	const struct hist *h = STATS_AT_CONST(s, f, struct hist);
	const uint64_t *u = STATS_AT_CONST(s, f, uint64_t);

	json_append(buf, len, n, "\"%s\":", f->key);
	switch (f->kind) {
	case STATS_REASONS:
		for (int r = 0; r < CLOSE_NREASONS; r++)
			json_append(buf, len, n, "%s\"%s\":%llu", r ? "," : "{", reason_names[r],
				    (unsigned long long)u[r]);
		json_append(buf, len, n, "}");
		break;
	case STATS_HIST:
		json_append(
		    buf, len, n,
		    "{\"count\":%llu,\"p50\":%llu,\"p99\":%llu,\"p999\":%llu,\"max\":%llu}",
		    (unsigned long long)hist_count(h), (unsigned long long)hist_percentile(h, 50),
		    (unsigned long long)hist_percentile(h, 99),
		    (unsigned long long)hist_percentile(h, 99.9), (unsigned long long)hist_max(h));
		break;
	case STATS_GAUGE_I64:
		json_append(buf, len, n, "%lld", (long long)*STATS_AT_CONST(s, f, int64_t));
		break;
	default:
		json_append(buf, len, n, "%llu", (unsigned long long)*u);
	}
}

const char *stats_json(const struct stats *s, char *buf, size_t len)
{
	size_t n = 0;

	json_append(buf, len, &n, "{");
	for (size_t i = 0; i < stats_nfields; i++) {
		if (stats_fields[i].key == NULL)
			continue;
		if (n > 1)
			json_append(buf, len, &n, ",");
		json_field(s, &stats_fields[i], buf, len, &n);
	}
	/* The process's own figures, read now, not from s: its memory and the log lines it
	 * dropped (the log_dropped field is that figure summed over workers, for /metrics). */
	json_append(buf, len, &n, ",\"heap_kb\":%lu,\"rss_kb\":%lu,\"log_dropped\":%llu}",
		    stats_heap_kb(), stats_rss_kb(), (unsigned long long)log_dropped_lines());
	if (n >= len && len > 0)
		buf[len - 1] = '\0';
	return buf;
}

void stats_add_counters(struct stats *a, const struct stats *b)
{
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];
		uint64_t *x = STATS_AT(a, f, uint64_t);
		const uint64_t *y = STATS_AT_CONST(b, f, uint64_t);

		switch (f->kind) {
		case STATS_COUNTER:
			*x += *y;
			break;
		case STATS_REASONS:
			for (int r = 0; r < CLOSE_NREASONS; r++)
				x[r] += y[r];
			break;
		case STATS_HIST:
			hist_merge(STATS_AT(a, f, struct hist), STATS_AT_CONST(b, f, struct hist));
			break;
		case STATS_MAX:
			if (*y > *x)
				*x = *y;
			break;
		case STATS_GAUGE:
		case STATS_GAUGE_I64:
			break;
		}
	}
}

void stats_add_gauges(struct stats *a, const struct stats *b)
{
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];

		if (f->kind == STATS_GAUGE)
			*STATS_AT(a, f, uint64_t) += *STATS_AT_CONST(b, f, uint64_t);
		else if (f->kind == STATS_GAUGE_I64)
			*STATS_AT(a, f, int64_t) += *STATS_AT_CONST(b, f, int64_t);
	}
}

void stats_log(const struct stats *s)
{
	char buf[2048];

	log_always("counters %s", stats_json(s, buf, sizeof(buf)));
}
