/* hist: a mergeable log-linear histogram of uint64_t values (HdrHistogram-like).
 *
 * Values below 256 have a bucket each; above, every power of two is split into 128
 * buckets, so a bucket is at most 1/128 (0.78%) of its lowest value wide. The whole
 * range of uint64_t fits in HIST_BUCKETS fixed counters: no allocation, ever, and the
 * struct can be embedded or live in memory shared by forked processes (an all-zero struct
 * is an empty histogram, so fresh mmap'd memory needs no hist_init). Not thread-safe:
 * give each writer its own histogram and merge.
 *
 * Merging is exact (hist_merge of A and B is bit-for-bit the histogram of both sets), and
 * so is the JSON form: hist_from_json(hist_to_json(h)) == h, so results of several
 * processes or machines combine exactly. The sum is kept in 128 bits, so the mean stays
 * exact even with values near UINT64_MAX. */
#ifndef TEARDOWN_HIST_H
#define TEARDOWN_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB_BITS  7
#define HIST_SUB_COUNT (1 << HIST_SUB_BITS) /* buckets per power of two */
/* Indexes run to hist_index(UINT64_MAX) = (64 - HIST_SUB_BITS) * 128 + 127. */
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) * HIST_SUB_COUNT)
/* A buffer this large always holds hist_to_json's output (every bucket, 20-digit counts). */
#define HIST_JSON_MAX (HIST_BUCKETS * 28 + 256)

struct hist {
	uint64_t count;
	uint64_t min;		 /* exact; 0 when empty */
	uint64_t max;		 /* exact; 0 when empty */
	uint64_t sum_lo, sum_hi; /* 128-bit sum of the recorded values */
	uint64_t buckets[HIST_BUCKETS];
};

void hist_init(struct hist *h);
void hist_record(struct hist *h, uint64_t v);
/* n times the value v (n = 0 records nothing). */
void hist_record_n(struct hist *h, uint64_t v, uint64_t n);
/* dst += src, exactly. */
void hist_merge(struct hist *dst, const struct hist *src);
/* dst = what was recorded into `now` since `then`, an earlier copy of it (per-interval
 * percentiles of a running histogram). Bucket counts and the sum are exact; min and max
 * are bounds: those of the bucket range that holds the difference (clamped to now's max).
 * A bucket whose count went down (a torn read of memory another process writes) counts 0. */
void hist_since(struct hist *dst, const struct hist *now, const struct hist *then);

/* The nearest-rank percentile (pct 0..100, clamped; NaN = 0): the highest value of the
 * bucket holding it, so never below the true value and at most 0.78% above, and never
 * above the recorded max. pct 0 is the exact min, 100 the exact max; 0 when empty. */
uint64_t hist_percentile(const struct hist *h, double pct);
uint64_t hist_count(const struct hist *h);
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h);
/* Exact sum / count as a double; 0 when empty. */
double hist_mean(const struct hist *h);

/* Bucket of a value, in 0 .. HIST_BUCKETS - 1. */
int hist_index(uint64_t v);
/* Lowest and highest value of a bucket (index in 0 .. HIST_BUCKETS - 1; others give 0). */
uint64_t hist_bucket_value(int index);
uint64_t hist_bucket_high(int index);

/* {"count":N,"min":N,"max":N,"sum":N,"buckets":[[INDEX,COUNT],...]} with only non-empty
 * buckets, in index order, NUL-terminated. Returns its length, or -1 when it does not fit
 * in len bytes (HIST_JSON_MAX always fits). */
int hist_to_json(const struct hist *h, char *buf, size_t len);
/* Parses exactly that form (JSON whitespace between tokens is allowed; keys in that order,
 * no others) and checks it is consistent: counts add up, min and max fall in the first and
 * last bucket, the sum fits the buckets. 0 and *end (if not NULL) just past the closing
 * '}', or -1 with *h empty. */
int hist_from_json(struct hist *h, const char *json, const char **end);

#endif
