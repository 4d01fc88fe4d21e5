/* client/expect.c: operators and their defaults, the implicit failed=0, unknown keys
 * rejected, values that cannot be known reported as unknown, and the exit status. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/expect.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct result *new_result(void)
{
	struct result *r = malloc(sizeof(*r));

	assert_non_null(r);
	result_init(r);
	return r;
}

static void test_parse_ops(void **state)
{
	const char *texts[] = {"established=100", "server.close_wait!=3", "rtt_p99_ms=5",
			       "rtt_p99.9_ms>=1", "msgs_per_s=1000",	  "client.fin_wait2<1"};
	struct expect_set *s = calloc(1, sizeof(*s));
	char err[256];

	(void)state;
	assert_int_equal(expect_parse(s, texts, 6, err, sizeof(err)), 0);
	assert_int_equal(s->n, 8); /* + failed=0 and echo_mismatch=0 */
	assert_int_equal(s->e[0].op, EX_EQ);
	assert_true(s->e[0].value == 100);
	assert_int_equal(s->e[1].op, EX_NE);
	assert_int_equal(s->e[2].op, EX_LE); /* a latency's `=` is an upper bound */
	assert_int_equal(s->e[3].op, EX_GE);
	assert_int_equal(s->e[4].op, EX_GE); /* a rate's `=` is a lower bound */
	assert_int_equal(s->e[5].op, EX_LT);
	assert_string_equal(s->e[6].key, "failed");
	assert_true(s->e[6].implicit);
	assert_string_equal(s->e[7].key, "echo_mismatch");
	free(s);
}

static void test_parse_errors(void **state)
{
	const char *bad[] = {"nonsense=1",    "server.nostate=0", "established",   "=3",
			     "established=x", "rtt_p101_ms=1",	  "failed.EFOO=1", "rtt_p99=1"};
	struct expect_set *s = calloc(1, sizeof(*s));
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(expect_parse(s, &bad[i], 1, err, sizeof(err)), -1);
		assert_true(strlen(err) > 0);
	}
	free(s);
}

/* An expectation about some failures (a phase, a kind) leaves every other failure
 * expected at 0 (the implicit failed.unnamed=0); one about all of them (failed) replaces
 * the implicit failed=0. Before, any failed.* key dropped the implicit check, so a run
 * where every connection failed otherwise still passed. */
static void test_implicit_failed(void **state)
{
	const char *some[] = {"failed.connect=20", "failed.deadline<=1"};
	const char *all[] = {"failed=23"};
	struct expect_set *s = calloc(1, sizeof(*s));
	struct result *r = new_result();
	char err[256];

	(void)state;
	assert_int_equal(expect_parse(s, some, 2, err, sizeof(err)), 0);
	assert_int_equal(s->n, 4);
	assert_string_equal(s->e[2].key, "failed.unnamed");
	assert_true(s->e[2].implicit);
	for (int i = 0; i < 20; i++)
		result_fail(r, PHASE_CONNECT, ECONNREFUSED);
	result_fail(r, PHASE_ECHO, FAIL_DEADLINE); /* named by its kind */
	expect_eval(s, r);
	assert_int_equal(s->e[0].outcome, EX_OK);
	assert_int_equal(s->e[2].outcome, EX_OK);
	assert_int_equal(expect_status(s), 0);
	result_fail(r, PHASE_CLOSE, FAIL_EOF); /* neither its phase nor its kind is named */
	result_fail(r, PHASE_CLOSE, ECONNRESET);
	expect_eval(s, r);
	assert_int_equal(s->e[2].outcome, EX_VIOLATED);
	assert_true(s->e[2].observed == 2);
	assert_int_equal(expect_status(s), 1);

	assert_int_equal(expect_parse(s, all, 1, err, sizeof(err)), 0);
	assert_int_equal(s->n, 2); /* failed=23 and echo_mismatch=0 */
	expect_eval(s, r);
	assert_int_equal(expect_status(s), 0);
	/* failed.unnamed is the implicit one's key, not one to give */
	const char *given[] = {"failed.unnamed=0"};
	assert_int_equal(expect_parse(s, given, 1, err, sizeof(err)), -1);
	free(s);
	free(r);
}

static void test_eval_status(void **state)
{
	const char *texts[] = {"established=3",	 "server.close_wait=0", "client.fin_wait2=2",
			       "rtt_max_ms<=2",	 "failed.ECONNRESET=1", "failed.echo=1",
			       "reconnects>=40", "interrupted=2"};
	struct expect_set *s = calloc(1, sizeof(*s));
	struct result *r = new_result();
	char err[256];

	(void)state;
	assert_int_equal(expect_parse(s, texts, 8, err, sizeof(err)), 0);
	r->established = 3;
	r->reconnects = 41;
	r->interrupted = 2;
	r->client.visible = 1;
	r->client.c.state[CENSUS_FIN_WAIT2] = 2;
	hist_record(&r->rtt_us, 1500);
	result_fail(r, PHASE_ECHO, ECONNRESET);
	r->server.visible = 0; /* another host: its sockets cannot be counted */
	expect_eval(s, r);
	assert_int_equal(s->e[0].outcome, EX_OK);
	assert_int_equal(s->e[1].outcome, EX_UNKNOWN);
	assert_int_equal(s->e[2].outcome, EX_OK);
	assert_int_equal(s->e[3].outcome, EX_OK);
	assert_true(s->e[3].observed > 1.49 && s->e[3].observed < 1.52);
	assert_int_equal(s->e[4].outcome, EX_OK);
	assert_int_equal(s->e[5].outcome, EX_OK);
	assert_int_equal(s->e[6].outcome, EX_OK);
	assert_true(s->e[6].observed == 41);
	assert_int_equal(s->e[7].outcome, EX_OK);
	assert_int_equal(expect_status(s), 3); /* unknown, none violated */
	r->server.visible = 1;
	r->server.c.state[CENSUS_CLOSE_WAIT] = 7;
	expect_eval(s, r);
	assert_int_equal(s->e[1].outcome, EX_VIOLATED);
	assert_true(s->e[1].observed == 7);
	assert_int_equal(expect_status(s), 1);
	r->server.c.state[CENSUS_CLOSE_WAIT] = 0;
	expect_eval(s, r);
	assert_int_equal(expect_status(s), 0);
	free(s);
	free(r);
}

/* A latency without samples cannot be checked: unknown, not a pass. */
static void test_no_samples_unknown(void **state)
{
	const char *texts[] = {"fin_to_fin_p99_ms=10"};
	struct expect_set *s = calloc(1, sizeof(*s));
	struct result *r = new_result();
	char err[256];

	(void)state;
	assert_int_equal(expect_parse(s, texts, 1, err, sizeof(err)), 0);
	expect_eval(s, r);
	assert_int_equal(s->e[0].outcome, EX_UNKNOWN);
	assert_int_equal(expect_status(s), 3);
	hist_record(&r->fin_to_fin_us, 20000); /* 20 ms > 10 ms */
	expect_eval(s, r);
	assert_int_equal(s->e[0].outcome, EX_VIOLATED);
	assert_int_equal(expect_status(s), 1);
	free(s);
	free(r);
}

/* kernel.COUNTER (a delta) and kernel.sockstat.NAME (at the end); an unknown name is a
 * usage error; counters that could not be read are unknown, never a pass. */
static void test_kernel_keys(void **state)
{
	const char *texts[] = {"kernel.TCPAbortOnClose=0", "kernel.ListenOverflows=0",
			       "kernel.TCPAbortOnData>=40", "kernel.sockstat.orphan<=10"};
	const char *bad[] = {"kernel.TCPAbortOnLinger=0", "kernel.tcpabortonclose=0",
			     "kernel.sockstat.orphans=0", "kernel.=0",
			     "kernel.sockstat.=0",	  "kernel.tcp_max_orphans=0"};
	struct expect_set *s = calloc(1, sizeof(*s));
	struct result *r = new_result();
	char err[256];

	(void)state;
	assert_int_equal(expect_parse(s, texts, 4, err, sizeof(err)), 0);
	assert_int_equal(s->e[3].op, EX_LE);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(expect_parse(s, &bad[i], 1, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "unknown key"));
	}
	assert_int_equal(expect_parse(s, texts, 4, err, sizeof(err)), 0);
	expect_eval(s, r); /* not read: every kernel key unknown */
	for (int i = 0; i < 4; i++)
		assert_int_equal(s->e[i].outcome, EX_UNKNOWN);
	assert_int_equal(expect_status(s), 3);
	r->kernel.available = 1;
	r->kernel.k.tcpext_found = (1U << KSTAT_NCOUNTERS) - 1;
	r->kernel.k.tcpext[KSTAT_ABORT_ON_DATA] = 50;
	r->kernel.k.sockstat_found = 1U << KSTAT_TCP_ORPHAN;
	r->kernel.k.sockstat[KSTAT_TCP_ORPHAN] = 3;
	expect_eval(s, r);
	assert_int_equal(expect_status(s), 0);
	assert_true(s->e[2].observed == 50);
	r->kernel.k.tcpext[KSTAT_ABORT_ON_CLOSE] = 1;
	expect_eval(s, r);
	assert_int_equal(s->e[0].outcome, EX_VIOLATED);
	assert_int_equal(expect_status(s), 1);
	r->kernel.k.tcpext[KSTAT_ABORT_ON_CLOSE] = 0;
	r->kernel.k.tcpext_found &= ~(1U << KSTAT_LISTEN_OVERFLOWS); /* not in this kernel */
	expect_eval(s, r);
	assert_int_equal(s->e[1].outcome, EX_UNKNOWN);
	assert_int_equal(expect_status(s), 3);
	free(s);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_ops),	       cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_implicit_failed),    cmocka_unit_test(test_eval_status),
	    cmocka_unit_test(test_no_samples_unknown), cmocka_unit_test(test_kernel_keys),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
