/* metrics_text: the server's figures in the Prometheus text format 0.0.4 (see the .h). */
#include "metrics_text.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FIN-to-close: microseconds when the echo was already flushed, up to fin_timeout (30 s by
 * default) for a half-closed peer that reads slowly. */
const struct mtext_bound metrics_text_fin_bounds[] = {
    {"0.00001", 10},  {"0.000025", 25},	  {"0.00005", 50},    {"0.0001", 100},	{"0.00025", 250},
    {"0.0005", 500},  {"0.001", 1000},	  {"0.0025", 2500},   {"0.005", 5000},	{"0.01", 10000},
    {"0.025", 25000}, {"0.05", 50000},	  {"0.1", 100000},    {"0.25", 250000}, {"0.5", 500000},
    {"1", 1000000},   {"2.5", 2500000},	  {"5", 5000000},     {"10", 10000000}, {"30", 30000000},
    {"60", 60000000}, {"120", 120000000}, {"300", 300000000},
};
const size_t metrics_text_nfin_bounds =
    sizeof(metrics_text_fin_bounds) / sizeof(metrics_text_fin_bounds[0]);

/* Event-loop lag: a few ms is the coarse clock and a busy machine; a second or more is a
 * stall (SIGSTOP, a VM pause, a slow callback) that deadlines must survive. */
const struct mtext_bound metrics_text_lag_bounds[] = {
    {"0.001", 1000},  {"0.0025", 2500}, {"0.005", 5000},  {"0.01", 10000},  {"0.025", 25000},
    {"0.05", 50000},  {"0.1", 100000},	{"0.25", 250000}, {"0.5", 500000},  {"1", 1000000},
    {"2.5", 2500000}, {"5", 5000000},	{"10", 10000000}, {"30", 30000000}, {"60", 60000000},
};
const size_t metrics_text_nlag_bounds =
    sizeof(metrics_text_lag_bounds) / sizeof(metrics_text_lag_bounds[0]);

/* ---- writer ------------------------------------------------------------------------ */

static void mtext_printf(struct mtext *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void mtext_printf(struct mtext *w, const char *fmt, ...)
{
	va_list ap;

	if (w->failed)
		return;
	va_start(ap, fmt);
	if (evbuffer_add_vprintf(w->b, fmt, ap) < 0)
		w->failed = 1;
	va_end(ap);
}

int metrics_text_escape_label(const char *in, char *out, size_t len)
{
	size_t n = 0;

	if (len == 0)
		return -1;
	for (; *in != '\0'; in++) {
		const char *rep = *in == '\\'	? "\\\\"
				  : *in == '"'	? "\\\""
				  : *in == '\n' ? "\\n"
						: NULL;
		size_t k = rep != NULL ? 2 : 1;

		if (n + k >= len) {
			out[n] = '\0';
			return -1;
		}
		if (rep != NULL)
			memcpy(out + n, rep, 2);
		else
			out[n] = *in;
		n += k;
	}
	out[n] = '\0';
	return (int)n;
}

void metrics_text_format_double(double v, char *buf, size_t len)
{
	if (isnan(v)) {
		snprintf(buf, len, "NaN");
		return;
	}
	if (isinf(v)) {
		snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return;
	}
}

/* HELP text escapes '\' and newline (not '"'). */
static void mtext_help_text(struct mtext *w, const char *help)
{
	for (const char *p = help; *p != '\0'; p++) {
		if (*p == '\\')
			mtext_printf(w, "\\\\");
		else if (*p == '\n')
			mtext_printf(w, "\\n");
		else
			mtext_printf(w, "%c", *p);
	}
}

void metrics_text_family(struct mtext *w, const char *name, const char *type, const char *help)
{
	mtext_printf(w, "# HELP %s ", name);
	mtext_help_text(w, help);
	mtext_printf(w, "\n# TYPE %s %s\n", name, type);
}

static void mtext_sample(struct mtext *w, const char *name, const char *label, const char *value,
			 const char *num)
{
	char esc[256];

	if (label == NULL) {
		mtext_printf(w, "%s %s\n", name, num);
		return;
	}
	if (metrics_text_escape_label(value, esc, sizeof(esc)) < 0)
		w->failed = 1; /* only fixed, short values are labelled here */
	mtext_printf(w, "%s{%s=\"%s\"} %s\n", name, label, esc, num);
}

void metrics_text_u64(struct mtext *w, const char *name, const char *label, const char *value,
		      uint64_t v)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)v);
	mtext_sample(w, name, label, value, num);
}

void metrics_text_double(struct mtext *w, const char *name, const char *label, const char *value,
			 double v)
{
	char num[40];

	metrics_text_format_double(v, num, sizeof(num));
	mtext_sample(w, name, label, value, num);
}

/* The exact 128-bit sum of a histogram, as a double in units of 1/scale. */
static double hist_sum_scaled(const struct hist *h, double scale)
{
	return (ldexp((double)h->sum_hi, 64) + (double)h->sum_lo) / scale;
}

void metrics_text_histogram(struct mtext *w, const char *name, const char *help,
			    const struct hist *h, const struct mtext_bound *bounds, size_t n,
			    double scale)
{
	char bucket[128], sum[128], count[128];
	uint64_t cum = 0;
	int i = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sum, sizeof(sum), "%s_sum", name);
	snprintf(count, sizeof(count), "%s_count", name);
	metrics_text_family(w, name, "histogram", help);
	for (size_t b = 0; b < n; b++) {
		for (; i < HIST_BUCKETS && hist_bucket_high(i) <= bounds[b].us; i++)
			cum += h->buckets[i];
		metrics_text_u64(w, bucket, "le", bounds[b].le, cum);
	}
	metrics_text_u64(w, bucket, "le", "+Inf", h->count);
	metrics_text_double(w, sum, NULL, NULL, hist_sum_scaled(h, scale));
	metrics_text_u64(w, count, NULL, NULL, h->count);
}

/* A family of one sample. */
static void mtext_one(struct mtext *w, const char *name, const char *type, const char *help,
		      uint64_t v)
{
	metrics_text_family(w, name, type, help);
	metrics_text_u64(w, name, NULL, NULL, v);
}

/* A gauge family with one unlabelled sample in seconds. */
static void mtext_one_seconds(struct mtext *w, const char *name, const char *help, double s)
{
	metrics_text_family(w, name, "gauge", help);
	metrics_text_double(w, name, NULL, NULL, s);
}

/* ---- the page ---------------------------------------------------------------------- */

static void render_connections(struct mtext *w, const struct metrics_view *v)
{
	const struct stats *s = v->stats;

	mtext_one(w, "teardown_workers", "gauge",
		  "Server processes whose figures are summed here (the workers key).", v->workers);
	mtext_one(w, "teardown_connections_open", "gauge",
		  "Connections in the connection table (leaky mode: including those it never "
		  "closes).",
		  s->open);
	mtext_one(w, "teardown_connections_accepted_total", "counter",
		  "Connections accepted (including those closed at once as overload).",
		  s->accepted);
	metrics_text_family(w, "teardown_connections_closed_total", "counter",
			    "Connections closed, by their one close reason.");
	for (int r = 0; r < CLOSE_NREASONS; r++)
		metrics_text_u64(w, "teardown_connections_closed_total", "reason",
				 stats_reason_name((enum close_reason)r), s->closed[r]);
	mtext_one(w, "teardown_connections_lost_total", "counter",
		  "Connections open in a worker when it died (killed, crashed): accepted = closed "
		  "+ lost + open.",
		  s->lost);
	mtext_one(w, "teardown_connections_lost_unknown_total", "counter",
		  "Workers that died in the middle of counting an accept or a close: that one "
		  "connection is missing from accepted, or counted as lost though it was closed.",
		  s->lost_unknown);
	mtext_one(w, "teardown_eof_ignored_total", "counter",
		  "recv()==0 seen and ignored (close_on_eof=no, the CLOSE_WAIT bug).",
		  s->eof_ignored);
	metrics_text_histogram(w, "teardown_fin_to_close_seconds",
			       "Time from learning of the peer's FIN (recv()==0 or EPOLLRDHUP) to "
			       "close(), in seconds (buckets resolved to 0.8%).",
			       &s->fin_to_close_us, metrics_text_fin_bounds,
			       metrics_text_nfin_bounds, 1e6);
	mtext_one(w, "teardown_received_bytes_total", "counter", "Bytes read from clients.",
		  s->bytes_in);
	mtext_one(w, "teardown_sent_bytes_total", "counter", "Bytes of echo sent to clients.",
		  s->bytes_out);
}

static void render_listener(struct mtext *w, const struct metrics_view *v)
{
	mtext_one(w, "teardown_emfile_pauses_total", "counter",
		  "Listener pauses after accept() failed with EMFILE/ENFILE (out of fds).",
		  v->stats->emfile_pauses);
	mtext_one(w, "teardown_shed_total", "counter",
		  "Connections accepted and closed at once to drain the accept queue while out of "
		  "fds.",
		  v->stats->shed);
	mtext_one(w, "teardown_log_dropped_lines_total", "counter",
		  "Log lines dropped because stderr did not take them as fast as they came "
		  "(nobody reading the pipe, socket or terminal); the log says how many once it "
		  "takes lines again.",
		  v->stats->log_dropped);
	mtext_one(w, "teardown_metrics_cap_pauses_total", "counter",
		  "Times the metrics listener stopped accepting because metrics_max_clients "
		  "connections were open (scrapers then wait in its backlog).",
		  v->metrics_cap_pauses);
}

static void render_loop(struct mtext *w, const struct metrics_view *v)
{
	metrics_text_histogram(
	    w, "teardown_event_loop_lag_seconds",
	    "How late a timer asked to ring every 100 ms rang, against "
	    "CLOCK_MONOTONIC, in seconds: the event loop's lag (a stall shows as "
	    "one late ring; summed over the workers).",
	    &v->stats->loop_lag_us, metrics_text_lag_bounds, metrics_text_nlag_bounds, 1e6);
}

static void render_fds(struct mtext *w, const struct watchdog_fds *f)
{
	mtext_one(w, "teardown_fds_open", "gauge", "Open fds (entries of /proc/self/fd).", f->open);
	mtext_one(w, "teardown_fds_connections", "gauge",
		  "Open fds that belong to the connection table.", f->conns);
	mtext_one(w, "teardown_fds_own", "gauge",
		  "Open fds that are the server's own: stdio, listeners, event loop, reserve fd, "
		  "census and /proc handles, metrics connections.",
		  f->own);
	mtext_one(w, "teardown_fds_unaccounted", "gauge",
		  "Open fds that are neither connections nor the server's own: leaked or unknown "
		  "(a leaked socket in CLOSE is invisible to sock_diag and ss).",
		  f->unaccounted);
}

static void render_close_wait(struct mtext *w, const struct watchdog_close_wait *cw)
{
	mtext_one(w, "teardown_close_wait_flushing_sockets", "gauge",
		  "CLOSE_WAIT sockets older than close_wait_alarm that are being flushed to a "
		  "half-closed peer within fin_timeout (not a problem).",
		  cw->flushing);
	mtext_one(w, "teardown_close_wait_overdue_sockets", "gauge",
		  "CLOSE_WAIT sockets older than close_wait_alarm that are not being flushed, or "
		  "are past fin_timeout (what the watchdog warns about).",
		  cw->overdue);
	mtext_one_seconds(w, "teardown_close_wait_oldest_overdue_seconds",
			  "Age of the oldest overdue CLOSE_WAIT socket (0 when none).",
			  (double)cw->oldest_ms / 1000.0);
	mtext_one(w, "teardown_close_wait_warnings_total", "counter",
		  "CLOSE_WAIT watchdog warnings logged.", cw->warnings);
}

static void render_census(struct mtext *w, const struct census_counts *c)
{
	mtext_one(w, "teardown_close_wait_sockets", "gauge",
		  "CLOSE_WAIT sockets on the server's port (sock_diag census every "
		  "census_interval; port-wide, all workers).",
		  c->state[CENSUS_CLOSE_WAIT]);
	metrics_text_family(w, "teardown_port_sockets", "gauge",
			    "TCP sockets on the server's port by state (sock_diag census, "
			    "port-wide, all workers).");
	for (int st = CENSUS_ESTABLISHED; st <= CENSUS_CLOSING; st++)
		metrics_text_u64(w, "teardown_port_sockets", "state", census_state_key(st),
				 c->state[st]);
	mtext_one(w, "teardown_accept_queue_depth", "gauge",
		  "Connections waiting in the accept queue of the port's listeners (idiag_rqueue).",
		  c->accept_queue);
	mtext_one(w, "teardown_accept_queue_limit", "gauge",
		  "Accept queue limit of the port's listeners (idiag_wqueue: backlog capped by "
		  "somaxconn).",
		  c->accept_backlog);
	mtext_one_seconds(w, "teardown_census_duration_seconds", "How long the last census took.",
			  (double)c->elapsed_us / 1e6);
}

static void render_kernel(struct mtext *w, const struct kstat *base, const struct kstat *now)
{
	char name[96], help[256];

	for (int i = 0; i < KSTAT_NCOUNTERS; i++) {
		uint64_t b = base->tcpext[i], n = now->tcpext[i];

		if (!(now->tcpext_found & (1U << i)) || !(base->tcpext_found & (1U << i)))
			continue;
		snprintf(name, sizeof(name), "teardown_netns_%s_total",
			 kstat_counter_key((enum kstat_counter)i));
		snprintf(help, sizeof(help),
			 "TcpExt %s of /proc/net/netstat since the server started. Per network "
			 "namespace, not per process: every process of the namespace adds to it.",
			 kstat_counter_name((enum kstat_counter)i));
		mtext_one(w, name, "counter", help, n >= b ? n - b : 0);
	}
	for (int i = 0; i < KSTAT_NSOCKSTAT; i++) {
		if (!(now->sockstat_found & (1U << i)))
			continue;
		snprintf(name, sizeof(name), "teardown_netns_sockstat_tcp_%s",
			 kstat_sockstat_name((enum kstat_sockstat)i));
		snprintf(help, sizeof(help),
			 "TCP %s of /proc/net/sockstat now%s. Per network namespace, not per "
			 "process.",
			 kstat_sockstat_name((enum kstat_sockstat)i),
			 i == KSTAT_TCP_MEM ? " (in pages)" : "");
		mtext_one(w, name, "gauge", help, now->sockstat[i]);
	}
}

int metrics_text_render(const struct metrics_view *v, struct evbuffer *out)
{
	struct mtext w = {.b = out, .failed = 0};

	render_connections(&w, v);
	render_listener(&w, v);
	render_loop(&w, v);
	if (v->fds != NULL && v->fds->valid)
		render_fds(&w, v->fds);
	if (v->cw != NULL)
		render_close_wait(&w, v->cw);
	if (v->census != NULL)
		render_census(&w, v->census);
	if (v->kbase != NULL && v->know != NULL)
		render_kernel(&w, v->kbase, v->know);
	return w.failed ? -1 : 0;
}
