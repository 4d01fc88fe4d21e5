/* client/reconnect.c: what a server's close means (every combination of its inputs), the
 * jittered reconnect delay (bounds, spread, determinism) and the token bucket of
 * --reconnect-rate. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/reconnect.h"

/* Every combination: with --reconnect never a failure, replaced unless stopping; without
 * it only a held silent connection's close is expected. */
static void test_verdict_table(void **state)
{
	(void)state;
	for (int bits = 0; bits < 16; bits++) {
		struct close_facts f = {
		    .reconnect = bits & 1,
		    .stopping = (bits >> 1) & 1,
		    .held = (bits >> 2) & 1,
		    .silent = (bits >> 3) & 1,
		};
		enum close_verdict want;
		if (f.reconnect)
			want = f.stopping ? CLOSE_BY_SERVER : CLOSE_RECONNECT;
		else
			want = f.held && f.silent ? CLOSE_BY_SERVER : CLOSE_FAILED;
		if (reconnect_verdict(&f) != want)
			fail_msg("reconnect %d stopping %d held %d silent %d: verdict %d, want %d",
				 f.reconnect, f.stopping, f.held, f.silent, reconnect_verdict(&f),
				 want);
	}
}

/* Uniform in [D/2, 3D/2): within the bounds, its mean about D, using the whole range,
 * the same for the same (id, n), and 0 without a delay. */
static void test_delay_jitter(void **state)
{
	const int64_t d_ms = 200, d_us = d_ms * 1000;
	int64_t lo = INT64_MAX, hi = 0;
	double sum = 0;
	int n = 0;

	(void)state;
	for (uint64_t id = 0; id < 500; id++) {
		for (uint64_t k = 0; k < 4; k++, n++) {
			int64_t v = reconnect_delay_us(d_ms, id, k);
			assert_true(v >= d_us / 2 && v < d_us * 3 / 2);
			assert_true(v == reconnect_delay_us(d_ms, id, k));
			lo = v < lo ? v : lo;
			hi = v > hi ? v : hi;
			sum += (double)v;
		}
	}
	print_message("delay 200 ms over %d reconnects: min %.1f ms, mean %.1f ms, max %.1f ms\n",
		      n, (double)lo / 1e3, sum / n / 1e3, (double)hi / 1e3);
	assert_true(sum / n > 0.95 * (double)d_us && sum / n < 1.05 * (double)d_us);
	assert_true(lo < d_us / 2 + d_us / 20 && hi > d_us * 3 / 2 - d_us / 20);
	assert_true(reconnect_delay_us(d_ms, 1, 0) != reconnect_delay_us(d_ms, 2, 0));
	assert_true(reconnect_delay_us(d_ms, 1, 0) != reconnect_delay_us(d_ms, 1, 1));
	assert_true(reconnect_delay_us(0, 7, 3) == 0);
}

/* 10 a second: one token at once, then one every 100 ms, never a burst above one;
 * unlimited when 0. */
static void test_bucket(void **state)
{
	struct bucket b;
	int64_t t = 1000000, wait;
	int taken = 0;

	(void)state;
	bucket_init(&b, 10, t);
	assert_true(bucket_take(&b, t) == 0);
	wait = bucket_take(&b, t);
	assert_true(wait > 99000 && wait <= 100001);
	assert_true(bucket_take(&b, t + wait) == 0);
	/* an hour idle holds at most the cap (1 at 10/s): one token, then a wait */
	t += 3600LL * 1000000;
	assert_true(bucket_take(&b, t) == 0);
	assert_true(bucket_take(&b, t) > 0);
	/* over 10 s of asking every millisecond: 100 tokens, +-1 */
	for (int64_t now = t; now < t + 10000000; now += 1000)
		taken += bucket_take(&b, now) == 0;
	print_message("10/s over 10 s: %d tokens\n", taken);
	assert_true(taken >= 99 && taken <= 101);
	bucket_init(&b, 0, t);
	for (int i = 0; i < 1000; i++)
		assert_true(bucket_take(&b, t) == 0);
	/* 1000/s: a burst of 10 ms (10 tokens) after a pause */
	bucket_init(&b, 1000, t);
	taken = 0;
	while (bucket_take(&b, t + 1000000) == 0)
		taken++;
	assert_int_equal(taken, 10);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_verdict_table),
	    cmocka_unit_test(test_delay_jitter),
	    cmocka_unit_test(test_bucket),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
