/* client/schedule.c: a connection's due times (fixed spacing exact over a long run, a
 * phase within one interval, Poisson gaps with the asked mean and replayable by a copied
 * cursor) and the stages' linear ramps. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/schedule.h"

#include <math.h>
#include <string.h>

static void test_fixed(void **state)
{
	struct sched s;
	struct sched_cursor c;

	(void)state;
	sched_init(&s, 100, ARRIVALS_FIXED, 7, 1000000);
	assert_true(s.base_us >= 1000000 && s.base_us < 1010000);
	sched_first(&s, &c);
	for (int i = 0; i < 1000000; i++)
		sched_next(&s, &c);
	/* message 10^6 at 100/s: 10^4 s after the base, to the microsecond */
	assert_int_equal(c.n, 1000000);
	assert_true(fabs(c.due_us - (s.base_us + 1e10)) < 1.0);
}

static void test_phase_spread(void **state)
{
	double lo = 1e9, hi = 0, sum = 0;

	(void)state;
	for (uint64_t id = 0; id < 10000; id++) {
		double p = sched_phase_us(1000, id);
		assert_true(p >= 0 && p < 1000);
		lo = p < lo ? p : lo;
		hi = p > hi ? p : hi;
		sum += p;
	}
	/* uniform over one interval: spread over it, mean near its middle */
	assert_true(lo < 10 && hi > 990);
	assert_true(fabs(sum / 10000 - 500) < 20);
}

static void test_poisson(void **state)
{
	struct sched s;
	struct sched_cursor c, copy;
	double start, var = 0, mean = 1e6 / 50;
	int n = 100000;

	(void)state;
	sched_init(&s, 50, ARRIVALS_POISSON, 42, 0);
	sched_first(&s, &c);
	start = c.due_us;
	for (int i = 0; i < n; i++) {
		double g = sched_gap_us(&s, c.n);
		assert_true(g > 0);
		var += (g - mean) * (g - mean);
		sched_next(&s, &c);
	}
	/* exponential gaps: mean 1/R and standard deviation 1/R, within 2 % */
	assert_true(fabs((c.due_us - start) / n - mean) < 0.02 * mean);
	assert_true(fabs(sqrt(var / n) - mean) < 0.02 * mean);
	/* a copied cursor replays the same times (the gaps are a function of id and n) */
	copy = c;
	for (int i = 0; i < 10; i++) {
		sched_next(&s, &c);
		sched_next(&s, &copy);
	}
	assert_true(c.due_us == copy.due_us);
	/* another connection has other gaps */
	{
		double g42 = sched_gap_us(&s, 0), g43;
		s.id = 43;
		g43 = sched_gap_us(&s, 0);
		assert_true(g42 != g43);
	}
}

static void test_arrivals_names(void **state)
{
	(void)state;
	assert_int_equal(arrivals_parse("fixed"), ARRIVALS_FIXED);
	assert_int_equal(arrivals_parse("poisson"), ARRIVALS_POISSON);
	assert_int_equal(arrivals_parse("uniform"), -1);
	assert_string_equal(arrivals_name(ARRIVALS_POISSON), "poisson");
}

static void test_stages(void **state)
{
	struct stages s;
	char err[256];

	(void)state;
	assert_int_equal(stages_parse(&s, "10s:1000,30s:5000,10s:0", 100000, err, sizeof(err)), 0);
	assert_int_equal(s.n, 3);
	assert_int_equal(stages_total_ms(&s), 50000);
	assert_true(stages_at(&s, 0, 0) == 0);
	assert_true(stages_at(&s, 0, 5000) == 500);
	assert_true(stages_at(&s, 0, 10000) == 1000);
	assert_true(stages_at(&s, 0, 25000) == 3000);
	assert_true(stages_at(&s, 0, 45000) == 2500);
	assert_true(stages_at(&s, 0, 50000) == 0);
	assert_true(stages_at(&s, 0, 90000) == 0);
	assert_true(stages_max(&s, 0) == 5000);
	/* a ramp from a starting value */
	assert_int_equal(stages_parse(&s, "2s:10", 100, err, sizeof(err)), 0);
	assert_true(stages_at(&s, 20, 1000) == 15);
	/* a rate ramp's integral, and when it reaches an area: 0 -> 100/s over 2 s makes 100
	 * starts due, 25 in the first second */
	assert_int_equal(stages_parse(&s, "2s:100", 1000, err, sizeof(err)), 0);
	assert_true(fabs(stages_area(&s, 0, 1000) - 25000) < 1e-6);
	assert_true(fabs(stages_area(&s, 0, 2000) - 100000) < 1e-6);
	assert_true(fabs(stages_area(&s, 0, 3000) - 200000) < 1e-6); /* the last rate holds */
	assert_true(fabs(stages_when(&s, 0, 25000) - 1000) < 1e-3);
	assert_true(fabs(stages_when(&s, 0, 150000) - 2500) < 1e-3);
	assert_int_equal(stages_parse(&s, "1s:10,1s:0", 1000, err, sizeof(err)), 0);
	assert_true(stages_when(&s, 0, 10001) < 0); /* ramped to 0: never */
	/* errors say which stage */
	assert_int_equal(stages_parse(&s, "10s:1000,30s", 100000, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "'30s'"));
	assert_int_equal(stages_parse(&s, "10:5", 100, err, sizeof(err)), -1);
	assert_int_equal(stages_parse(&s, "1s:500", 100, err, sizeof(err)), -1);
	assert_int_equal(stages_parse(&s, "1s:-5", 100, err, sizeof(err)), -1);
	assert_int_equal(stages_parse(&s, "1s:5x", 100, err, sizeof(err)), -1);
	assert_int_equal(stages_parse(&s, "", 100, err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fixed),   cmocka_unit_test(test_phase_spread),
	    cmocka_unit_test(test_poisson), cmocka_unit_test(test_arrivals_names),
	    cmocka_unit_test(test_stages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
