/* Unit tests of common/hist.c: accuracy, exact merge, exact JSON round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

/* Deterministic 64-bit generator (splitmix64): the same values on every run. */
static uint64_t rng_state;

static uint64_t rng(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct hist *new_hist(void)
{
	struct hist *h = test_malloc(sizeof(*h));

	hist_init(h);
	return h;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank, the definition hist_percentile documents. */
static uint64_t true_percentile(const uint64_t *sorted, size_t n, double pct)
{
	double r = ceil(pct / 100.0 * (double)n);
	size_t rank = r < 1 ? 1 : (size_t)r;

	return sorted[(rank > n ? n : rank) - 1];
}

static void check_percentiles(const uint64_t *v, size_t n)
{
	static const double pcts[] = {0, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100};
	uint64_t *sorted = test_malloc(n * sizeof(*sorted));
	struct hist *h = new_hist();

	for (size_t i = 0; i < n; i++)
		hist_record(h, v[i]);
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_u64);
	for (size_t i = 0; i < sizeof(pcts) / sizeof(pcts[0]); i++) {
		uint64_t want = true_percentile(sorted, n, pcts[i]);
		uint64_t got = hist_percentile(h, pcts[i]);

		if (got < want || (double)(got - want) > (double)want / 100.0)
			fail_msg("p%g: got %" PRIu64 ", true %" PRIu64, pcts[i], got, want);
	}
	assert_int_equal(hist_min(h), sorted[0]);
	assert_int_equal(hist_max(h), sorted[n - 1]);
	test_free(sorted);
	test_free(h);
}

static void empty_histogram(void **state)
{
	struct hist *h = new_hist();
	char buf[256];
	int n;

	(void)state;
	assert_int_equal(hist_count(h), 0);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_max(h), 0);
	assert_true(hist_mean(h) == 0.0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 100), 0);
	n = hist_to_json(h, buf, sizeof(buf));
	assert_int_equal(n, strlen(buf));
	assert_string_equal(buf, "{\"count\":0,\"min\":0,\"max\":0,\"sum\":0,\"buckets\":[]}");
	test_free(h);
}

/* Memory from mmap or calloc is an empty histogram without hist_init. */
static void zeroed_struct_is_empty(void **state)
{
	struct hist *a = new_hist(), *z = test_calloc(1, sizeof(*z));

	(void)state;
	assert_memory_equal(a, z, sizeof(*a));
	hist_record(z, 42);
	assert_int_equal(hist_min(z), 42);
	assert_int_equal(hist_max(z), 42);
	test_free(a);
	test_free(z);
}

static void zero_value(void **state)
{
	struct hist *h = new_hist();

	(void)state;
	hist_record(h, 0);
	assert_int_equal(hist_index(0), 0);
	assert_int_equal(hist_count(h), 1);
	assert_int_equal(hist_min(h), 0);
	assert_int_equal(hist_max(h), 0);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 99.9), 0);
	hist_record(h, 1000);
	assert_int_equal(hist_percentile(h, 50), 0);
	assert_int_equal(hist_percentile(h, 51), 1000);
	assert_true(hist_mean(h) == 500.0);
	test_free(h);
}

/* Every value lies in its bucket, buckets are ordered, at most 1/128 wide. */
static void check_bucket_of(uint64_t v)
{
	int i = hist_index(v);
	uint64_t lo = hist_bucket_value(i), hi = hist_bucket_high(i);

	assert_in_range(i, 0, HIST_BUCKETS - 1);
	if (v < lo || v > hi)
		fail_msg("%" PRIu64 " not in bucket %d [%" PRIu64 ", %" PRIu64 "]", v, i, lo, hi);
	assert_true((double)(hi - lo) <= (double)lo / 128.0);
}

static void buckets_cover_the_range(void **state)
{
	(void)state;
	for (uint64_t v = 0; v < 70000; v++)
		check_bucket_of(v);
	for (int b = 8; b < 64; b++) {
		uint64_t p = (uint64_t)1 << b;

		check_bucket_of(p - 1);
		check_bucket_of(p);
		check_bucket_of(p + 1);
	}
	for (int i = 0; i < 100000; i++)
		check_bucket_of(rng() >> (rng() % 64));
	check_bucket_of(UINT64_MAX);
	assert_int_equal(hist_index(UINT64_MAX), HIST_BUCKETS - 1);
	assert_int_equal(hist_bucket_high(HIST_BUCKETS - 1), UINT64_MAX);
	for (int i = 1; i < HIST_BUCKETS; i++)
		assert_int_equal(hist_bucket_value(i), hist_bucket_high(i - 1) + 1);
	assert_int_equal(hist_bucket_value(-1), 0);
	assert_int_equal(hist_bucket_value(HIST_BUCKETS), 0);
}

static void uniform_percentiles(void **state)
{
	size_t n = 100000;
	uint64_t *v = test_malloc(n * sizeof(*v));

	(void)state;
	for (size_t i = 0; i < n; i++)
		v[i] = i + 1;
	check_percentiles(v, n);
	test_free(v);
}

/* Latency-like: exponential around 2 ms in microseconds, with a heavy tail. */
static void exponential_percentiles(void **state)
{
	size_t n = 200000;
	uint64_t *v = test_malloc(n * sizeof(*v));

	(void)state;
	rng_state = 1;
	for (size_t i = 0; i < n; i++) {
		double u = ((double)(rng() >> 11) + 0.5) / 9007199254740992.0;

		v[i] = (uint64_t)(-log(u) * 2000.0) + (i % 1000 == 0 ? 5000000 : 0);
	}
	check_percentiles(v, n);
	test_free(v);
}

static void wide_random_percentiles(void **state)
{
	size_t n = 50000;
	uint64_t *v = test_malloc(n * sizeof(*v));

	(void)state;
	rng_state = 2;
	for (size_t i = 0; i < n; i++)
		v[i] = rng() >> (rng() % 64);
	check_percentiles(v, n);
	test_free(v);
}

static void percentile_arguments_clamped(void **state)
{
	struct hist *h = new_hist();

	(void)state;
	for (uint64_t v = 100; v <= 1000000; v += 100)
		hist_record(h, v);
	assert_int_equal(hist_percentile(h, -5), 100);
	assert_int_equal(hist_percentile(h, NAN), 100);
	assert_int_equal(hist_percentile(h, 0), 100);
	assert_int_equal(hist_percentile(h, 100), 1000000);
	assert_int_equal(hist_percentile(h, 150), 1000000);
	/* The highest value of the top bucket is above the max: clamped to it. */
	assert_int_equal(hist_percentile(h, 99.9999), 1000000);
	test_free(h);
}

static void record_n_equals_repeated_record(void **state)
{
	struct hist *a = new_hist(), *b = new_hist();

	(void)state;
	for (int i = 0; i < 1000; i++)
		hist_record(a, 777777);
	hist_record(a, 3);
	hist_record_n(b, 777777, 1000);
	hist_record_n(b, 5, 0);
	hist_record_n(b, 3, 1);
	assert_memory_equal(a, b, sizeof(*a));
	test_free(a);
	test_free(b);
}

static void merge_equals_combined(void **state)
{
	struct hist *a = new_hist(), *b = new_hist(), *all = new_hist(), *e = new_hist();

	(void)state;
	rng_state = 3;
	for (int i = 0; i < 50000; i++) {
		uint64_t v = rng() >> (rng() % 64);

		hist_record(i % 3 ? a : b, v);
		hist_record(all, v);
	}
	hist_merge(a, b);
	assert_memory_equal(a, all, sizeof(*a));
	hist_merge(a, e); /* merging an empty one changes nothing */
	assert_memory_equal(a, all, sizeof(*a));
	hist_merge(e, all); /* into an empty one: a copy, min included */
	assert_memory_equal(e, all, sizeof(*e));
	test_free(a);
	test_free(b);
	test_free(all);
	test_free(e);
}

static void huge_values(void **state)
{
	struct hist *h = new_hist(), *back = new_hist();
	uint64_t big = UINT64_MAX / 2;
	char *buf = test_malloc(HIST_JSON_MAX);

	(void)state;
	hist_record_n(h, big, 4);
	hist_record(h, UINT64_MAX);
	assert_int_equal(hist_count(h), 5);
	assert_int_equal(hist_max(h), UINT64_MAX);
	assert_int_equal(hist_min(h), big);
	assert_int_equal(hist_percentile(h, 100), UINT64_MAX);
	assert_true(hist_percentile(h, 50) >= big);
	assert_true((double)(hist_percentile(h, 50) - big) <= (double)big / 100.0);
	/* The sum (above 2^64) is exact: 4 * (2^63 - 1) + 2^64 - 1. */
	assert_true(hist_mean(h) == ((double)big * 4 + (double)UINT64_MAX) / 5);
	assert_true(hist_to_json(h, buf, HIST_JSON_MAX) > 0);
	assert_non_null(strstr(buf, "\"sum\":55340232221128654843,"));
	assert_int_equal(hist_from_json(back, buf, NULL), 0);
	assert_memory_equal(h, back, sizeof(*h));
	test_free(buf);
	test_free(h);
	test_free(back);
}

static void json_round_trip_exact(void **state)
{
	struct hist *h = new_hist(), *back = new_hist();
	char *buf = test_malloc(HIST_JSON_MAX), *again = test_malloc(HIST_JSON_MAX);
	const char *end = NULL;
	int n;

	(void)state;
	rng_state = 4;
	for (int i = 0; i < 20000; i++)
		hist_record(h, rng() >> (rng() % 64));
	n = hist_to_json(h, buf, HIST_JSON_MAX);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(buf));
	assert_int_equal(hist_from_json(back, buf, &end), 0);
	assert_ptr_equal(end, buf + n);
	assert_memory_equal(h, back, sizeof(*h));
	assert_int_equal(hist_to_json(back, again, HIST_JSON_MAX), n);
	assert_string_equal(buf, again);
	test_free(buf);
	test_free(again);
	test_free(h);
	test_free(back);
}

/* Exactly len bytes needed: len - 1 is too small, and so is 0. */
static void json_buffer_too_small(void **state)
{
	struct hist *h = new_hist();
	char buf[128];
	int n;

	(void)state;
	hist_record(h, 5);
	hist_record(h, 500);
	n = hist_to_json(h, buf, sizeof(buf));
	assert_string_equal(buf, "{\"count\":2,\"min\":5,\"max\":500,\"sum\":505,"
				 "\"buckets\":[[5,1],[378,1]]}");
	assert_int_equal(hist_to_json(h, buf, (size_t)n + 1), n);
	assert_int_equal(hist_to_json(h, buf, (size_t)n), -1);
	assert_int_equal(hist_to_json(h, buf, 10), -1);
	assert_int_equal(hist_to_json(h, buf, 0), -1);
	test_free(h);
}

/* The worst case fits HIST_JSON_MAX: every bucket used, large counts. */
static void json_max_size_fits(void **state)
{
	struct hist *h = new_hist();
	char *buf = test_malloc(HIST_JSON_MAX);

	(void)state;
	for (int i = 0; i < HIST_BUCKETS; i++)
		hist_record_n(h, hist_bucket_value(i), UINT64_MAX / HIST_BUCKETS);
	assert_true(hist_to_json(h, buf, HIST_JSON_MAX) > 0);
	test_free(buf);
	test_free(h);
}

static void json_whitespace_and_end(void **state)
{
	struct hist *h = new_hist();
	const char *s = " { \"count\" : 2 ,\n\"min\":5, \"max\":500,\"sum\":505,"
			"\"buckets\": [ [5, 1], [378,1] ] }, {\"next\":1}";
	const char *end;

	(void)state;
	assert_int_equal(hist_from_json(h, s, &end), 0);
	assert_string_equal(end, ", {\"next\":1}");
	assert_int_equal(hist_count(h), 2);
	assert_int_equal(hist_percentile(h, 100), 500);
	test_free(h);
}

static void json_rejects_other_forms(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{}",
	    "[]",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":5}",
	    "{\"min\":5,\"count\":1,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]],\"x\":1}",
	    "{\"count\":-1,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":01,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":1.0,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":1e0,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":\"1\",\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1],]}",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1,2]]}",
	    "{\"count\":2,\"min\":5,\"max\":6,\"sum\":11,\"buckets\":[[6,1],[5,1]]}",
	    "{\"count\":2,\"min\":5,\"max\":5,\"sum\":10,\"buckets\":[[5,1],[5,1]]}",
	    "{\"count\":0,\"min\":0,\"max\":0,\"sum\":0,\"buckets\":[[5,0]]}",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[7424,1]]}",
	    "{\"count\":2,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    "{\"count\":1,\"min\":6,\"max\":6,\"sum\":6,\"buckets\":[[5,1]]}",
	    "{\"count\":1,\"min\":5,\"max\":5,\"sum\":6,\"buckets\":[[5,1]]}",
	    "{\"count\":2,\"min\":9,\"max\":5,\"sum\":14,\"buckets\":[[5,1],[9,1]]}",
	    "{\"count\":0,\"min\":1,\"max\":0,\"sum\":0,\"buckets\":[]}",
	    "{\"count\":0,\"min\":0,\"max\":0,\"sum\":1,\"buckets\":[]}",
	    "{\"count\":18446744073709551616,\"min\":5,\"max\":5,\"sum\":5,\"buckets\":[[5,1]]}",
	    ("{\"count\":1,\"min\":5,\"max\":5,\"sum\":"
	     "340282366920938463463374607431768211456,\"buckets\":[[5,1]]}"),
	    "{'count':1,'min':5,'max':5,'sum':5,'buckets':[[5,1]]}",
	};
	struct hist *h = new_hist();
	const char *end = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hist_record(h, 1);
		if (hist_from_json(h, bad[i], &end) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(end);
		assert_int_equal(hist_count(h), 0); /* left empty */
	}
	test_free(h);
}

/* Every proper prefix of a valid form is rejected (truncated input never half-parses). */
static void json_rejects_truncation(void **state)
{
	struct hist *h = new_hist();
	char buf[512], cut[512];
	int n;

	(void)state;
	hist_record(h, 1);
	hist_record(h, 123456);
	hist_record(h, 99999999999ULL);
	n = hist_to_json(h, buf, sizeof(buf));
	assert_true(n > 0);
	for (int i = 0; i < n; i++) {
		memcpy(cut, buf, (size_t)i);
		cut[i] = '\0';
		if (hist_from_json(h, cut, NULL) != -1)
			fail_msg("accepted prefix: %s", cut);
	}
	test_free(h);
}

/* hist_since: the values recorded between two copies, as if recorded alone. */
static void since_is_the_interval(void **state)
{
	static struct hist then, now, alone, d;

	(void)state;
	hist_init(&then);
	for (uint64_t v = 1; v <= 1000; v++)
		hist_record(&then, v * 1000); /* the first interval: up to 1 s */
	now = then;
	hist_init(&alone);
	for (uint64_t v = 1; v <= 500; v++) {
		hist_record(&now, v); /* the second: up to 500 us */
		hist_record(&alone, v);
	}
	hist_since(&d, &now, &then);
	assert_int_equal(hist_count(&d), 500);
	assert_memory_equal(d.buckets, alone.buckets, sizeof(d.buckets));
	assert_int_equal(hist_percentile(&d, 50), hist_percentile(&alone, 50));
	assert_int_equal(hist_percentile(&d, 99), hist_percentile(&alone, 99));
	assert_true(hist_max(&d) >= 500 && hist_max(&d) <= 505);
	assert_true(hist_mean(&d) > 250.4 && hist_mean(&d) < 250.6);
	hist_since(&d, &now, &now); /* nothing new */
	assert_int_equal(hist_count(&d), 0);
	assert_int_equal(hist_percentile(&d, 99), 0);
	hist_since(&d, &then, &now); /* counts that went down count 0 */
	assert_int_equal(hist_count(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(empty_histogram),
	    cmocka_unit_test(zeroed_struct_is_empty),
	    cmocka_unit_test(zero_value),
	    cmocka_unit_test(buckets_cover_the_range),
	    cmocka_unit_test(uniform_percentiles),
	    cmocka_unit_test(exponential_percentiles),
	    cmocka_unit_test(wide_random_percentiles),
	    cmocka_unit_test(percentile_arguments_clamped),
	    cmocka_unit_test(record_n_equals_repeated_record),
	    cmocka_unit_test(merge_equals_combined),
	    cmocka_unit_test(huge_values),
	    cmocka_unit_test(json_round_trip_exact),
	    cmocka_unit_test(json_buffer_too_small),
	    cmocka_unit_test(json_max_size_fits),
	    cmocka_unit_test(json_whitespace_and_end),
	    cmocka_unit_test(json_rejects_other_forms),
	    cmocka_unit_test(json_rejects_truncation),
	    cmocka_unit_test(since_is_the_interval),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
