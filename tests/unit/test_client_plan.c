/* client/plan.c: the workers' shares add up to the run; their connections' ids are the run's
 * 0 .. N-1 once each; each worker deals the mix over its own connections, or per source
 * address; a connection's messages and hold follow its scenario and the run's shape. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/plan.h"

#include <stdlib.h>
#include <string.h>

/* Options of a run as options_parse leaves them (only what the plan reads). */
static struct client_opts *opts(int64_t connections, int64_t procs, const char *mix)
{
	struct client_opts *o = calloc(1, sizeof(*o));
	char err[128];

	assert_non_null(o);
	o->connections = connections;
	o->procs = procs;
	o->messages = 10;
	o->hold_ms = 5000;
	if (mix != NULL) {
		assert_int_equal(mix_parse(mix, &o->mix, err, sizeof(err)), 0);
		o->scenario = SCEN_MIXED;
	} else {
		mix_single(&o->mix, SCEN_ECHO);
		o->scenario = SCEN_ECHO;
	}
	return o;
}

static void test_share(void **state)
{
	(void)state;
	for (int w = 1; w <= 7; w++) {
		uint64_t sum = 0;
		for (int i = 0; i < w; i++)
			sum += plan_share(50003, i, w);
		assert_int_equal(sum, 50003);
	}
	assert_int_equal(plan_share(10, 0, 3), 4);
	assert_int_equal(plan_share(10, 2, 3), 3);
}

/* A one pass of every worker's slots numbers the run's connections 0 .. N-1, each once. */
static void test_ids_once(void **state)
{
	static const int64_t procs[] = {1, 3, 7};

	(void)state;
	for (size_t i = 0; i < sizeof(procs) / sizeof(procs[0]); i++) {
		struct client_opts *o = opts(50, procs[i], NULL);
		struct plan p;
		int seen[50] = {0};
		plan_init(&p, o);
		assert_int_equal(p.nworkers, procs[i]);
		for (int w = 0; w < p.nworkers; w++) {
			struct plan_worker pw;
			struct plan_conn c;
			assert_int_equal(plan_worker_init(&pw, &p, w), 0);
			for (uint64_t k = 0; k < plan_slots(&p, w); k++) {
				plan_next(&pw, &c);
				assert_true(c.id < 50);
				assert_int_equal(c.id % (uint64_t)p.nworkers, w);
				seen[c.id]++;
			}
			plan_worker_free(&pw);
		}
		for (int id = 0; id < 50; id++)
			assert_int_equal(seen[id], 1);
		free(o);
	}
}

/* Each worker deals the whole mix over its own connections: with two workers and a mix of
 * two, each worker runs both (by id alone, worker 0 would run only the even entries). */
static void test_mix_per_worker(void **state)
{
	struct client_opts *o = opts(8, 2, "echo=1,close=1");
	struct plan p;

	(void)state;
	plan_init(&p, o);
	for (int w = 0; w < 2; w++) {
		struct plan_worker pw;
		struct plan_conn c;
		int n[SCEN_N] = {0};
		assert_int_equal(plan_worker_init(&pw, &p, w), 0);
		for (int k = 0; k < 4; k++) {
			plan_next(&pw, &c);
			n[c.scenario]++;
		}
		assert_int_equal(n[SCEN_ECHO], 2);
		assert_int_equal(n[SCEN_CLOSE], 2);
		plan_worker_free(&pw);
	}
	free(o);
}

/* With several --sources the mix is dealt per source address: each address runs both
 * scenarios (by the worker's count, with two sources and a mix of two, source 0 would get
 * only echo). */
static void test_mix_per_source(void **state)
{
	struct client_opts *o = opts(8, 1, "echo=1,close=1");
	struct plan p;
	struct plan_worker pw;
	struct plan_conn c;
	int n[2][SCEN_N] = {{0}};

	(void)state;
	o->src_first = 0x7f000002;
	o->nsources = 2;
	plan_init(&p, o);
	assert_true(p.mix_per_source);
	assert_int_equal(plan_worker_init(&pw, &p, 0), 0);
	for (int k = 0; k < 8; k++) {
		plan_next(&pw, &c);
		n[c.id % 2][c.scenario]++;
	}
	for (int s = 0; s < 2; s++) {
		assert_int_equal(n[s][SCEN_ECHO], 2);
		assert_int_equal(n[s][SCEN_CLOSE], 2);
	}
	plan_worker_free(&pw);
	free(o);
}

/* Messages and hold by scenario and run shape. */
static void test_messages_and_hold(void **state)
{
	struct client_opts *o = opts(4, 1, NULL);
	struct plan p;
	struct plan_worker pw;
	struct plan_conn c;

	(void)state;
	/* echo, one pass: --messages */
	plan_init(&p, o);
	assert_int_equal(plan_worker_init(&pw, &p, 0), 0);
	plan_next(&pw, &c);
	assert_int_equal(c.messages, 10);
	plan_worker_free(&pw);
	/* echo alone with --duration: until the run ends */
	o->duration_ms = 1000;
	plan_init(&p, o);
	assert_int_equal(plan_worker_init(&pw, &p, 0), 0);
	plan_next(&pw, &c);
	assert_true(c.messages == UINT64_MAX);
	plan_worker_free(&pw);
	/* silent alone with --duration: one message, held until the run ends */
	mix_single(&o->mix, SCEN_SILENT);
	o->scenario = SCEN_SILENT;
	plan_init(&p, o);
	assert_int_equal(plan_worker_init(&pw, &p, 0), 0);
	plan_next(&pw, &c);
	assert_int_equal(c.messages, 1);
	assert_int_equal(c.hold_ms, 0);
	plan_worker_free(&pw);
	free(o);
	/* in a mix with --duration: echo ends after --messages, idle is held for --hold */
	o = opts(4, 1, "echo=1,idle=1");
	o->duration_ms = 1000;
	plan_init(&p, o);
	assert_int_equal(plan_worker_init(&pw, &p, 0), 0);
	for (int k = 0; k < 2; k++) {
		plan_next(&pw, &c);
		if (c.scenario == SCEN_ECHO) {
			assert_int_equal(c.messages, 10);
		} else {
			assert_int_equal(c.scenario, SCEN_IDLE);
			assert_true(c.messages == UINT64_MAX);
			assert_int_equal(c.hold_ms, 5000);
		}
	}
	plan_worker_free(&pw);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_share),
	    cmocka_unit_test(test_ids_once),
	    cmocka_unit_test(test_mix_per_worker),
	    cmocka_unit_test(test_mix_per_source),
	    cmocka_unit_test(test_messages_and_hold),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
