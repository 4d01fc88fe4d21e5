/* Unit tests of common/clock.c: the monotonic clock and the conversions to libevent's
 * struct timeval that the connection deadlines re-arm their alarms with. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdint.h>

#include "clock.h"

/* ns, us and ms readings taken in that order agree with each other and never go back. */
static void test_mono_units_agree(void **state)
{
	int64_t ns = clock_mono_ns(), us = clock_mono_us(), ms = clock_mono_ms();

	(void)state;
	assert_true(ns / 1000 <= us);
	assert_true(us / 1000 <= ms);
	assert_true(ms - ns / 1000000 < 1000); /* the three reads took under a second */
	assert_true(clock_mono_us() >= us);
}

static void test_us_to_tv(void **state)
{
	struct timeval tv = clock_us_to_tv(2500001);

	(void)state;
	assert_int_equal(tv.tv_sec, 2);
	assert_int_equal(tv.tv_usec, 500001);
	tv = clock_us_to_tv(999999);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 999999);
	tv = clock_us_to_tv(-5); /* a deadline already past: fire at once */
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 0);
}

static void test_ms_to_tv(void **state)
{
	struct timeval tv = clock_ms_to_tv(1500);

	(void)state;
	assert_int_equal(tv.tv_sec, 1);
	assert_int_equal(tv.tv_usec, 500000);
	tv = clock_ms_to_tv(-1);
	assert_int_equal(tv.tv_sec, 0);
	assert_int_equal(tv.tv_usec, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mono_units_agree),
	    cmocka_unit_test(test_us_to_tv),
	    cmocka_unit_test(test_ms_to_tv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
