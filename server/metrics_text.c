/* metrics_text: the server's figures in the Prometheus text format 0.0.4 (see the .h). */
#include "metrics_text.h"
#include "version.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
			    const struct hist *h, const struct stats_bound *bounds, size_t n,
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

/* One field of struct stats, as its row of stats_fields says. */
static void render_stats_field(struct mtext *w, const struct stats *s, const struct stats_field *f)
{
	const uint64_t *u = STATS_AT_CONST(s, f, uint64_t);

	switch (f->kind) {
	case STATS_REASONS:
		metrics_text_family(w, f->prom, "counter", f->help);
		for (int r = 0; r < CLOSE_NREASONS; r++)
			metrics_text_u64(w, f->prom, "reason",
					 stats_reason_name((enum close_reason)r), u[r]);
		break;
	case STATS_HIST:
		metrics_text_histogram(w, f->prom, f->help, STATS_AT_CONST(s, f, struct hist),
				       f->bounds, f->nbounds, 1e6);
		break;
	case STATS_GAUGE_I64:
		metrics_text_family(w, f->prom, "gauge", f->help);
		metrics_text_double(w, f->prom, NULL, NULL, (double)*STATS_AT_CONST(s, f, int64_t));
		break;
	default:
		mtext_one(w, f->prom, f->kind == STATS_COUNTER ? "counter" : "gauge", f->help, *u);
	}
}

/* The counters (summed over the workers), every field of stats_fields with a family. */
static void render_stats(struct mtext *w, const struct metrics_view *v)
{
	char gen[24];

	/* Two labels: written here rather than with metrics_text_u64 (one label). The version
	 * is a literal of ours with nothing to escape. */
	snprintf(gen, sizeof(gen), "%llu", (unsigned long long)v->stats->generation);
	metrics_text_family(w, "teardown_build_info", "gauge",
			    "Always 1: the version, and the generation (1 at the first start, one "
			    "more at each upgrade).");
	if (evbuffer_add_printf(w->b, "teardown_build_info{version=\"%s\",generation=\"%s\"} 1\n",
				TEARDOWN_VERSION, gen) < 0)
		w->failed = 1;
	mtext_one(w, "teardown_workers", "gauge",
		  "Server processes whose figures are summed here (the workers key).", v->workers);
	for (size_t i = 0; i < stats_nfields; i++)
		if (stats_fields[i].prom != NULL)
			render_stats_field(w, v->stats, &stats_fields[i]);
	mtext_one(w, "teardown_metrics_cap_pauses_total", "counter",
		  "Times the metrics listener stopped accepting because metrics_max_clients "
		  "connections were open (scrapers then wait in its backlog).",
		  v->metrics_cap_pauses);
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

	render_stats(&w, v);
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
