/* client/scenario.c: the byte pattern is a function of (connection, message, offset)
 * alone, and a mix spreads its weights exactly and evenly. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/scenario.h"

#include <string.h>

static void test_names(void **state)
{
	(void)state;
	for (int s = 0; s < SCEN_ALL; s++)
		assert_int_equal(scenario_parse(scenario_name(s)), s);
	assert_int_equal(scenario_parse("half-close"), SCEN_HALF_CLOSE);
	assert_int_equal(scenario_parse("halfclose"), -1);
	assert_true(scenario_holds(SCEN_IDLE) && scenario_holds(SCEN_SILENT));
	assert_false(scenario_holds(SCEN_ECHO));
	assert_true(scenario_churns(SCEN_CLOSE) && scenario_churns(SCEN_HALF_CLOSE) &&
		    scenario_churns(SCEN_RESET));
	assert_false(scenario_churns(SCEN_ECHO) || scenario_churns(SCEN_IDLE));
	/* crash ends like reset (churn); vanish is held like silent */
	assert_true(scenario_churns(SCEN_CRASH) && !scenario_holds(SCEN_CRASH));
	assert_true(scenario_holds(SCEN_VANISH) && !scenario_churns(SCEN_VANISH));
	assert_true(scenario_kills(SCEN_CRASH) && scenario_kills(SCEN_VANISH));
	assert_false(scenario_kills(SCEN_RESET) || scenario_kills(SCEN_SILENT) ||
		     scenario_kills(SCEN_MIXED));
	assert_true(SCEN_CRASH < SCEN_N && SCEN_VANISH < SCEN_N); /* a connection runs them */
}

/* Any piece of a message generated on its own equals the same piece of the whole. */
static void test_pattern_random_access(void **state)
{
	unsigned char whole[1000], piece[1000];

	(void)state;
	pattern_fill(42, 7, 0, whole, sizeof(whole));
	for (size_t off = 0; off < 40; off++) {
		for (size_t n = 1; n < 30; n++) {
			pattern_fill(42, 7, off, piece, n);
			assert_memory_equal(piece, whole + off, n);
			assert_int_equal(pattern_check(42, 7, off, whole + off, n), n);
		}
	}
	assert_int_equal(pattern_check(42, 7, 0, whole, sizeof(whole)), sizeof(whole));
}

/* Bytes of another connection, another message or another offset do not pass. */
static void test_pattern_detects(void **state)
{
	unsigned char a[256], b[256];

	(void)state;
	pattern_fill(1, 0, 0, a, sizeof(a));
	pattern_fill(2, 0, 0, b, sizeof(b));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_true(pattern_check(1, 1, 0, a, sizeof(a)) < sizeof(a));
	assert_true(pattern_check(1, 0, 8, a, sizeof(a)) < sizeof(a));
	assert_true(pattern_check(2, 0, 0, a, sizeof(a)) < sizeof(a));
	a[100] ^= 1;
	assert_int_equal(pattern_check(1, 0, 0, a, sizeof(a)), 100);
}

static void test_mix_exact_and_spread(void **state)
{
	struct mix m;
	char err[128], back[128];
	int count[SCEN_N] = {0}, run = 0, longest = 0, prev = -1;

	(void)state;
	assert_int_equal(mix_parse("echo=50,close=30,reset=20", &m, err, sizeof(err)), 0);
	assert_int_equal(m.total, 100);
	for (uint64_t id = 0; id < 1000; id++) {
		int s = mix_pick(&m, id);
		count[s]++;
		run = s == prev ? run + 1 : 1;
		longest = run > longest ? run : longest;
		prev = s;
	}
	assert_int_equal(count[SCEN_ECHO], 500);
	assert_int_equal(count[SCEN_CLOSE], 300);
	assert_int_equal(count[SCEN_RESET], 200);
	assert_int_equal(count[SCEN_IDLE], 0);
	/* Interleaved, not in blocks: no scenario runs more than twice in a row here. */
	assert_true(longest <= 2);
	mix_format(&m, back, sizeof(back));
	assert_string_equal(back, "echo=50,close=30,reset=20");
}

static void test_mix_errors(void **state)
{
	struct mix m;
	char err[128];

	(void)state;
	assert_int_equal(mix_parse("echo", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("echo=x", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("echo=-1", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("vanish=x", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("mixed=10", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("echo=0", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("echo=1,echo=2", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("echo=900,close=200", &m, err, sizeof(err)), -1);
	assert_int_equal(mix_parse("silent=1", &m, err, sizeof(err)), 0);
	assert_int_equal(mix_pick(&m, 12345), SCEN_SILENT);
	mix_single(&m, SCEN_HALF_CLOSE);
	assert_int_equal(mix_pick(&m, 7), SCEN_HALF_CLOSE);
}

/* crash and vanish take part in a mix like the others. */
static void test_mix_dead_peers(void **state)
{
	struct mix m;
	char err[128], back[128];
	int count[SCEN_N] = {0};

	(void)state;
	assert_int_equal(mix_parse("echo=2,crash=1,vanish=1", &m, err, sizeof(err)), 0);
	for (uint64_t id = 0; id < 400; id++)
		count[mix_pick(&m, id)]++;
	assert_int_equal(count[SCEN_ECHO], 200);
	assert_int_equal(count[SCEN_CRASH], 100);
	assert_int_equal(count[SCEN_VANISH], 100);
	mix_format(&m, back, sizeof(back));
	assert_string_equal(back, "echo=2,crash=1,vanish=1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),	    cmocka_unit_test(test_pattern_random_access),
	    cmocka_unit_test(test_pattern_detects), cmocka_unit_test(test_mix_exact_and_spread),
	    cmocka_unit_test(test_mix_errors),	    cmocka_unit_test(test_mix_dead_peers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
