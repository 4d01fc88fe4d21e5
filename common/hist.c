#include "hist.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* GCC and Clang on 64-bit Linux: exact sums of up to 2^64 values below 2^64. */
__extension__ typedef unsigned __int128 u128;

static u128 hist_sum(const struct hist *h)
{
	return (u128)h->sum_hi << 64 | h->sum_lo;
}

static void hist_set_sum(struct hist *h, u128 s)
{
	h->sum_lo = (uint64_t)s;
	h->sum_hi = (uint64_t)(s >> 64);
}

void hist_init(struct hist *h)
{
	memset(h, 0, sizeof(*h));
}

/* Values below 2 * HIST_SUB_COUNT are their own index. Above, e = msb - HIST_SUB_BITS
 * drops the low bits: v >> e is in [128, 255], and each e gets the next 128 indexes. */
int hist_index(uint64_t v)
{
	int e;

	if (v < 2 * HIST_SUB_COUNT)
		return (int)v;
	e = 63 - __builtin_clzll(v) - HIST_SUB_BITS;
	return e * HIST_SUB_COUNT + (int)(v >> e);
}

uint64_t hist_bucket_value(int index)
{
	int e;

	if (index < 0 || index >= HIST_BUCKETS)
		return 0;
	if (index < 2 * HIST_SUB_COUNT)
		return (uint64_t)index;
	e = index / HIST_SUB_COUNT - 1;
	return (uint64_t)(index - e * HIST_SUB_COUNT) << e;
}

uint64_t hist_bucket_high(int index)
{
	if (index < 0 || index >= HIST_BUCKETS)
		return 0;
	if (index < 2 * HIST_SUB_COUNT)
		return (uint64_t)index;
	return hist_bucket_value(index) + ((uint64_t)1 << (index / HIST_SUB_COUNT - 1)) - 1;
}

void hist_record_n(struct hist *h, uint64_t v, uint64_t n)
{
	if (n == 0)
		return;
	if (h->count == 0 || v < h->min)
		h->min = v;
	if (h->count == 0 || v > h->max)
		h->max = v;
	h->count += n;
	h->buckets[hist_index(v)] += n;
	hist_set_sum(h, hist_sum(h) + (u128)v * n);
}

void hist_record(struct hist *h, uint64_t v)
{
	hist_record_n(h, v, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
	if (src->count == 0)
		return;
	if (dst->count == 0 || src->min < dst->min)
		dst->min = src->min;
	if (dst->count == 0 || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	hist_set_sum(dst, hist_sum(dst) + hist_sum(src));
	for (int i = 0; i < HIST_BUCKETS; i++)
		dst->buckets[i] += src->buckets[i];
}

void hist_since(struct hist *dst, const struct hist *now, const struct hist *then)
{
	int first = -1, last = -1;

	hist_init(dst);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		uint64_t d =
		    now->buckets[i] > then->buckets[i] ? now->buckets[i] - then->buckets[i] : 0;

		dst->buckets[i] = d;
		dst->count += d;
		if (d > 0 && first < 0)
			first = i;
		if (d > 0)
			last = i;
	}
	if (dst->count == 0)
		return;
	dst->min = hist_bucket_value(first);
	dst->max = hist_bucket_high(last) < now->max ? hist_bucket_high(last) : now->max;
	if (hist_sum(now) >= hist_sum(then))
		hist_set_sum(dst, hist_sum(now) - hist_sum(then));
}

uint64_t hist_count(const struct hist *h)
{
	return h->count;
}

uint64_t hist_min(const struct hist *h)
{
	return h->count ? h->min : 0;
}

uint64_t hist_max(const struct hist *h)
{
	return h->count ? h->max : 0;
}

double hist_mean(const struct hist *h)
{
	return h->count ? (double)hist_sum(h) / (double)h->count : 0.0;
}

uint64_t hist_percentile(const struct hist *h, double pct)
{
	uint64_t rank, seen = 0;
	double r;

	if (h->count == 0)
		return 0;
	if (!(pct > 0)) /* also NaN */
		return h->min;
	if (pct >= 100)
		return h->max;
	r = ceil(pct / 100.0 * (double)h->count);
	rank = r < 1 ? 1 : r >= (double)h->count ? h->count : (uint64_t)r;
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->buckets[i];
		if (seen >= rank) {
			uint64_t v = hist_bucket_high(i);
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ---- JSON ---- */

struct out {
	char *buf;
	size_t len, used;
	int full;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (o->full)
		return;
	va_start(ap, fmt);
	r = vsnprintf(o->buf + o->used, o->len - o->used, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r >= o->len - o->used)
		o->full = 1;
	else
		o->used += (size_t)r;
}

/* Decimal digits of v, NUL-terminated, ending at the end of buf[40]. */
static const char *u128_str(u128 v, char buf[40])
{
	char *p = buf + 39;

	*p = '\0';
	do {
		*--p = (char)('0' + (int)(v % 10));
		v /= 10;
	} while (v != 0);
	return p;
}

int hist_to_json(const struct hist *h, char *buf, size_t len)
{
	struct out o = {buf, len, 0, len == 0};
	char sum[40];
	int first = 1;

	put(&o, "{\"count\":%" PRIu64 ",\"min\":%" PRIu64 ",\"max\":%" PRIu64 ",\"sum\":%s",
	    h->count, hist_min(h), hist_max(h), u128_str(hist_sum(h), sum));
	put(&o, ",\"buckets\":[");
	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (h->buckets[i] == 0)
			continue;
		put(&o, "%s[%d,%" PRIu64 "]", first ? "" : ",", i, h->buckets[i]);
		first = 0;
	}
	put(&o, "]}");
	return o.full ? -1 : (int)o.used;
}

static void skip_ws(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')
		(*p)++;
}

static int lit(const char **p, const char *s)
{
	size_t n = strlen(s);

	skip_ws(p);
	if (strncmp(*p, s, n) != 0)
		return -1;
	*p += n;
	return 0;
}

/* A JSON non-negative integer (no sign, no leading zero, no fraction) below 2^128. */
static int num128(const char **p, u128 *out)
{
	const u128 max = ~(u128)0;
	u128 v = 0;

	skip_ws(p);
	if (**p < '0' || **p > '9' || (**p == '0' && (*p)[1] >= '0' && (*p)[1] <= '9'))
		return -1;
	for (; **p >= '0' && **p <= '9'; (*p)++) {
		unsigned d = (unsigned)(**p - '0');

		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	if (**p == '.' || **p == 'e' || **p == 'E')
		return -1;
	*out = v;
	return 0;
}

static int num64(const char **p, uint64_t *out)
{
	u128 v;

	if (num128(p, &v) < 0 || v > UINT64_MAX)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* `"name":N`, after a ',' unless it is the first field. */
static int field(const char **p, const char *name, int first, u128 *out)
{
	char key[16];

	snprintf(key, sizeof(key), "\"%s\"", name);
	if ((!first && lit(p, ",") < 0) || lit(p, key) < 0 || lit(p, ":") < 0)
		return -1;
	return num128(p, out);
}

/* One [INDEX,COUNT] pair: indexes strictly increasing, counts not zero. */
static int bucket(const char **p, struct hist *h, int *prev)
{
	uint64_t idx, n;

	if (lit(p, "[") < 0 || num64(p, &idx) < 0 || lit(p, ",") < 0 || num64(p, &n) < 0 ||
	    lit(p, "]") < 0)
		return -1;
	if (idx >= HIST_BUCKETS || (int)idx <= *prev || n == 0)
		return -1;
	h->buckets[idx] = n;
	*prev = (int)idx;
	return 0;
}

static int buckets(const char **p, struct hist *h)
{
	int prev = -1;

	if (lit(p, ",") < 0 || lit(p, "\"buckets\"") < 0 || lit(p, ":") < 0 || lit(p, "[") < 0)
		return -1;
	if (lit(p, "]") == 0)
		return 0;
	do {
		if (bucket(p, h, &prev) < 0)
			return -1;
	} while (lit(p, ",") == 0);
	return lit(p, "]");
}

/* The parsed header must agree with the buckets, as a recorded histogram always does. */
static int consistent(const struct hist *h)
{
	u128 total = 0, lo = 0, hi = 0, sum = hist_sum(h);
	int first = -1, last = -1;

	for (int i = 0; i < HIST_BUCKETS; i++) {
		if (h->buckets[i] == 0)
			continue;
		first = first < 0 ? i : first;
		last = i;
		total += h->buckets[i];
		lo += (u128)h->buckets[i] * hist_bucket_value(i);
		hi += (u128)h->buckets[i] * hist_bucket_high(i);
	}
	if (total != h->count)
		return -1;
	if (h->count == 0)
		return h->min == 0 && h->max == 0 && sum == 0 ? 0 : -1;
	if (h->min > h->max || first != hist_index(h->min) || last != hist_index(h->max))
		return -1;
	return sum >= lo && sum <= hi ? 0 : -1;
}

int hist_from_json(struct hist *h, const char *json, const char **end)
{
	const char *p = json;
	u128 count, min, max, sum;

	hist_init(h);
	if (lit(&p, "{") < 0 || field(&p, "count", 1, &count) < 0 ||
	    field(&p, "min", 0, &min) < 0 || field(&p, "max", 0, &max) < 0 ||
	    field(&p, "sum", 0, &sum) < 0 || buckets(&p, h) < 0 || lit(&p, "}") < 0)
		goto fail;
	if (count > UINT64_MAX || min > UINT64_MAX || max > UINT64_MAX)
		goto fail;
	h->count = (uint64_t)count;
	h->min = (uint64_t)min;
	h->max = (uint64_t)max;
	hist_set_sum(h, sum);
	if (consistent(h) < 0)
		goto fail;
	if (end != NULL)
		*end = p;
	return 0;
fail:
	hist_init(h);
	return -1;
}
