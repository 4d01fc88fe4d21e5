/* metrics_text: the Prometheus text exposition format, version 0.0.4, for the server's
 * figures (what metrics.c serves on GET /metrics).
 *
 * The format (prometheus.io/docs/instrumenting/exposition_formats): lines end in '\n';
 * every family is one group: "# HELP name text" ('\' and newline escaped as \\ and \n),
 * "# TYPE name counter|gauge|histogram", then its samples "name{label="value",...} value",
 * where a label value escapes '\', '"' and newline. Values are Go-style floats: integers,
 * decimals, +Inf, -Inf, NaN. A histogram has cumulative name_bucket{le="..."} samples
 * ending with le="+Inf" (equal to name_count), then name_sum and name_count. */
#ifndef TEARDOWN_SERVER_METRICS_TEXT_H
#define TEARDOWN_SERVER_METRICS_TEXT_H

#include "census.h"
#include "hist.h"
#include "kstat.h"
#include "stats.h"
#include "figures.h"

#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/* Everything one scrape reports. Pointers left NULL are families not reported. */
struct metrics_view {
	const struct stats *stats;	      /* counters summed over the workers */
	uint64_t workers;		      /* processes the figures are summed over */
	const struct watchdog_fds *fds;	      /* summed over the workers */
	const struct watchdog_close_wait *cw; /* summed (oldest_ms: the maximum) */
	const struct census_counts *census;   /* port-wide, from one process */
	const struct kstat *kbase;	      /* the kernel counters at start ... */
	const struct kstat *know;	      /* ... and now */
	uint64_t metrics_cap_pauses;	      /* metrics listener paused at metrics_max_clients */
};

/* A writer: appends to an evbuffer and remembers a failed append (out of memory). */
struct mtext {
	struct evbuffer *b;
	int failed;
};

/* Escapes a label value ('\', '"', newline) into out. Returns the length written, or -1 when
 * it does not fit (out then holds a truncated, NUL-terminated prefix). */
int metrics_text_escape_label(const char *in, char *out, size_t len);
/* A float as Prometheus reads it: the shortest "%.Ng" that reads back exactly; +Inf, -Inf,
 * NaN. */
void metrics_text_format_double(double v, char *buf, size_t len);

void metrics_text_family(struct mtext *w, const char *name, const char *type, const char *help);
/* One sample; label may be NULL, else `name` and an unescaped value. */
void metrics_text_u64(struct mtext *w, const char *name, const char *label, const char *value,
		      uint64_t v);
void metrics_text_double(struct mtext *w, const char *name, const char *label, const char *value,
			 double v);
/* A histogram family from a struct hist of values in units of 1/scale (scale 1e6: values
 * in microseconds reported in seconds). Bucket le counts the hist buckets whose every value
 * is <= le (so a value less than 0.8% below a bound may be counted in the next one). */
void metrics_text_histogram(struct mtext *w, const char *name, const char *help,
			    const struct hist *h, const struct stats_bound *bounds, size_t n,
			    double scale);

/* The whole page. 0, or -1 when out of memory (the buffer then holds part of it). */
int metrics_text_render(const struct metrics_view *v, struct evbuffer *out);

#endif
