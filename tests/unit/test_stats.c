/* stats: the one table that describes the server's counters (stats_fields). It walks the
 * table: every field of struct stats has exactly one row; every row with a key is in the
 * counters line with its value; every row with a Prometheus name is on the /metrics page
 * with its value; stats_add_counters sums counters and histograms, keeps the largest of a
 * maximum and leaves gauges alone, which stats_add_gauges sums. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/metrics_text.h"
#include "server/stats.h"

#include <event2/buffer.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t field_size(const struct stats_field *f)
{
	switch (f->kind) {
	case STATS_REASONS:
		return sizeof(uint64_t) * CLOSE_NREASONS;
	case STATS_HIST:
		return sizeof(struct hist);
	case STATS_GAUGE_I64:
		return sizeof(int64_t);
	default:
		return sizeof(uint64_t);
	}
}

/* A value of its own for row i: 1000 * (i + 1) (+ r for reason r); a histogram gets one
 * sample of 7 * (i + 1) us. */
static void fill(struct stats *s, size_t i)
{
	const struct stats_field *f = &stats_fields[i];
	uint64_t v = 1000 * (uint64_t)(i + 1);

	switch (f->kind) {
	case STATS_REASONS:
		for (int r = 0; r < CLOSE_NREASONS; r++)
			STATS_AT(s, f, uint64_t)[r] = v + (uint64_t)r;
		break;
	case STATS_HIST:
		hist_record(STATS_AT(s, f, struct hist), 7 * (uint64_t)(i + 1));
		break;
	case STATS_GAUGE_I64:
		*STATS_AT(s, f, int64_t) = (int64_t)v;
		break;
	default:
		*STATS_AT(s, f, uint64_t) = v;
	}
}

static struct stats *filled(void)
{
	struct stats *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	for (size_t i = 0; i < stats_nfields; i++)
		fill(s, i);
	return s;
}

static int cmp_offset(const void *a, const void *b)
{
	size_t x = (*(const struct stats_field *const *)a)->offset;
	size_t y = (*(const struct stats_field *const *)b)->offset;

	return (x > y) - (x < y);
}

/* The rows tile struct stats: no field without a row, no two rows on one field. */
static void test_every_field_once(void **state)
{
	const struct stats_field *by[64];
	size_t end = 0;

	(void)state;
	assert_true(stats_nfields <= 64);
	for (size_t i = 0; i < stats_nfields; i++)
		by[i] = &stats_fields[i];
	qsort(by, stats_nfields, sizeof(by[0]), cmp_offset);
	for (size_t i = 0; i < stats_nfields; i++) {
		if (by[i]->offset != end)
			fail_msg("struct stats at offset %zu: no row, or two rows (row at %zu)",
				 end, by[i]->offset);
		end += field_size(by[i]);
		/* Reported somewhere, and under a name of its own. */
		assert_true(by[i]->key != NULL || by[i]->prom != NULL);
		assert_true(by[i]->prom == NULL || by[i]->help != NULL);
		assert_true(by[i]->kind != STATS_HIST || by[i]->prom == NULL || by[i]->nbounds > 0);
		for (size_t j = 0; j < i; j++) {
			if (by[i]->key != NULL && by[j]->key != NULL)
				assert_string_not_equal(by[i]->key, by[j]->key);
			if (by[i]->prom != NULL && by[j]->prom != NULL)
				assert_string_not_equal(by[i]->prom, by[j]->prom);
		}
	}
	assert_int_equal(end, sizeof(struct stats));
}

static void expect_in(const char *text, const char *what)
{
	if (strstr(text, what) == NULL)
		fail_msg("missing: %s\nin: %s", what, text);
}

static void test_counters_line(void **state)
{
	struct stats *s = filled();
	char buf[2048], want[256];

	(void)state;
	stats_json(s, buf, sizeof(buf));
	assert_true(strlen(buf) < sizeof(buf) - 1);
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];
		unsigned long long v = 1000 * (unsigned long long)(i + 1);

		if (f->key == NULL)
			continue;
		if (f->kind == STATS_REASONS)
			snprintf(want, sizeof(want), "\"%s\":{\"eof\":%llu,\"reset\":%llu,", f->key,
				 v, v + 1);
		else if (f->kind == STATS_HIST)
			snprintf(want, sizeof(want), "\"%s\":{\"count\":1,", f->key);
		else
			snprintf(want, sizeof(want), "\"%s\":%llu,", f->key, v);
		expect_in(buf, want);
	}
	expect_in(buf, "\"heap_kb\":");
	expect_in(buf, "\"rss_kb\":");
	expect_in(buf, "\"log_dropped\":");
	free(s);
}

static char *render(const struct stats *s)
{
	struct metrics_view v = {.stats = s, .workers = 1};
	struct evbuffer *b = evbuffer_new();
	size_t n;
	char *t;

	assert_non_null(b);
	assert_int_equal(metrics_text_render(&v, b), 0);
	n = evbuffer_get_length(b);
	t = malloc(n + 1);
	assert_non_null(t);
	evbuffer_copyout(b, t, n);
	t[n] = '\0';
	evbuffer_free(b);
	return t;
}

static void test_metrics_page(void **state)
{
	struct stats *s = filled();
	char *t = render(s);
	char want[256];

	(void)state;
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];
		unsigned long long v = 1000 * (unsigned long long)(i + 1);

		if (f->prom == NULL)
			continue;
		snprintf(want, sizeof(want), "# HELP %s ", f->prom);
		expect_in(t, want);
		if (f->kind == STATS_REASONS)
			snprintf(want, sizeof(want), "\n%s{reason=\"%s\"} %llu\n", f->prom,
				 stats_reason_name(CLOSE_ERROR), v + CLOSE_ERROR);
		else if (f->kind == STATS_HIST)
			snprintf(want, sizeof(want), "\n%s_count 1\n", f->prom);
		else
			snprintf(want, sizeof(want), "\n%s %llu\n", f->prom, v);
		expect_in(t, want);
	}
	free(t);
	free(s);
}

static void test_merge(void **state)
{
	struct stats *a = filled(), *b = filled(), *g = filled();

	(void)state;
	for (size_t i = 0; i < stats_nfields; i++) /* a maximum taken from b: b's is larger */
		if (stats_fields[i].kind == STATS_MAX)
			*STATS_AT(b, &stats_fields[i], uint64_t) += 5;
	stats_add_counters(a, b);
	stats_add_gauges(g, b);
	for (size_t i = 0; i < stats_nfields; i++) {
		const struct stats_field *f = &stats_fields[i];
		uint64_t v = 1000 * (uint64_t)(i + 1);
		const uint64_t *x = STATS_AT(a, f, uint64_t), *y = STATS_AT(g, f, uint64_t);

		switch (f->kind) {
		case STATS_COUNTER:
			assert_int_equal(*x, 2 * v);
			assert_int_equal(*y, v);
			break;
		case STATS_REASONS:
			for (int r = 0; r < CLOSE_NREASONS; r++)
				assert_int_equal(x[r], 2 * (v + (uint64_t)r));
			break;
		case STATS_HIST:
			assert_int_equal(hist_count(STATS_AT(a, f, struct hist)), 2);
			assert_int_equal(hist_count(STATS_AT(g, f, struct hist)), 1);
			break;
		case STATS_MAX:
			assert_int_equal(*x, v + 5);
			break;
		case STATS_GAUGE:
			assert_int_equal(*x, v);
			assert_int_equal(*y, 2 * v);
			break;
		case STATS_GAUGE_I64:
			assert_int_equal(*STATS_AT(a, f, int64_t), (int64_t)v);
			assert_int_equal(*STATS_AT(g, f, int64_t), 2 * (int64_t)v);
			break;
		}
	}
	free(a);
	free(b);
	free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_field_once),
	    cmocka_unit_test(test_counters_line),
	    cmocka_unit_test(test_metrics_page),
	    cmocka_unit_test(test_merge),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
