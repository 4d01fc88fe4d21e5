/* client/options.c: flags parse into the right units, bad flags are refused (exit 2 in
 * the program), and worker shares add up. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/driver.h"
#include "client/options.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses a NULL-terminated list of arguments with stderr silenced (usage text). */
static int parse(struct client_opts *o, const char **args)
{
	char *argv[64];
	int argc = 0, saved = dup(STDERR_FILENO), null = open("/dev/null", O_WRONLY), rc;

	argv[argc++] = (char *)"load-client";
	while (*args != NULL && argc < 63)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	dup2(null, STDERR_FILENO);
	rc = options_parse(o, argc, argv);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(null);
	return rc;
}

static void test_defaults(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *args[] = {"--server", "127.0.0.1:8080", NULL};

	(void)state;
	assert_int_equal(parse(o, args), 0);
	assert_int_equal(o->port, 8080);
	assert_int_equal(o->scenario, SCEN_ECHO);
	assert_int_equal(o->connections, 10);
	assert_int_equal(o->size, 64);
	assert_int_equal(o->pipeline, 1);
	assert_int_equal(o->duration_ms, 0);
	assert_int_equal(o->reply_timeout_ms, 10000);
	assert_int_equal(o->procs, 1);
	assert_int_equal(o->nsources, 0);
	assert_int_equal(o->mix.total, 1);
	free(o);
}

static void test_values(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *args[] = {"--server=[::1]:9000",
			      "--connections",
			      "5000",
			      "--rate",
			      "500/s",
			      "--duration",
			      "2m",
			      "--size",
			      "64k",
			      "--reply-timeout",
			      "250ms",
			      "--keepalive",
			      "30s,10s,3",
			      "--user-timeout",
			      "20s",
			      "--procs",
			      "4",
			      "--scenario",
			      "mixed",
			      "--mix",
			      "echo=3,reset=1",
			      "--expect",
			      "failed=0",
			      "--json",
			      "--timeline",
			      "/tmp/t.csv",
			      NULL};

	(void)state;
	assert_int_equal(parse(o, args), 0);
	assert_int_equal(o->addr.ss_family, AF_INET6);
	assert_int_equal(o->port, 9000);
	assert_int_equal(o->connections, 5000);
	assert_int_equal(o->rate, 500);
	assert_int_equal(o->duration_ms, 120000);
	assert_int_equal(o->size, 65536);
	assert_int_equal(o->reply_timeout_ms, 250);
	assert_int_equal(o->keepalive[0], 30000);
	assert_int_equal(o->keepalive[1], 10000);
	assert_int_equal(o->keepalive[2], 3);
	assert_int_equal(o->user_timeout_ms, 20000);
	assert_int_equal(o->procs, 4);
	assert_int_equal(o->scenario, SCEN_MIXED);
	assert_int_equal(o->mix.weight[SCEN_ECHO], 3);
	assert_int_equal(o->nexpect, 1);
	assert_true(o->json);
	assert_string_equal(o->timeline, "/tmp/t.csv");
	free(o);
}

static void test_sources(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *args[] = {"--server", "127.0.0.1:80", "--sources", "127.0.0.2-127.0.0.40",
			      NULL};
	struct in_addr a;

	(void)state;
	assert_int_equal(parse(o, args), 0);
	assert_int_equal(o->nsources, 39);
	a.s_addr = options_source(o, 0);
	assert_string_equal(inet_ntoa(a), "127.0.0.2");
	a.s_addr = options_source(o, 40);
	assert_string_equal(inet_ntoa(a), "127.0.0.3");
	free(o);
}

static void test_errors(void **state)
{
	static const char *cases[][8] = {
	    {"--connections", "10", NULL},     /* no --server */
	    {"--server", "127.0.0.1", NULL},   /* no port */
	    {"--server", "127.0.0.1:0", NULL}, /* port 0 */
	    {"--server", "127.0.0.1:80", "--connections", "0", NULL},
	    {"--server", "127.0.0.1:80", "--connections", "12x", NULL},
	    {"--server", "127.0.0.1:80", "--duration", "10", NULL},    /* no unit */
	    {"--server", "127.0.0.1:80", "--scenario", "crash", NULL}, /* not yet */
	    {"--server", "127.0.0.1:80", "--scenario", "vanish", NULL},
	    {"--server", "127.0.0.1:80", "--scenario", "nope", NULL},
	    {"--server", "127.0.0.1:80", "--scenario", "mixed", NULL}, /* needs --mix */
	    {"--server", "127.0.0.1:80", "--scenario", "echo", "--mix", "echo=1", NULL},
	    {"--server", "127.0.0.1:80", "--bogus", "1", NULL},
	    {"--server", "127.0.0.1:80", "--connections", NULL}, /* no value */
	    {"--server", "127.0.0.1:80", "--sources", "127.0.0.9-127.0.0.2", NULL},
	    {"--server", "[::1]:80", "--sources", "127.0.0.2-127.0.0.3", NULL},
	    {"--server", "127.0.0.1:80", "--keepalive", "30s,10s", NULL},
	    {"--server", "127.0.0.1:80", "--keepalive", "1500ms,10s,3", NULL},
	    {"--server", "127.0.0.1:80", "--connections", "2", "--procs", "3", NULL},
	    {"--server", "127.0.0.1:80", "--plot", "x.png", NULL}, /* needs --timeline */
	    {"--server", "127.0.0.1:80", "stray", NULL},
	};
	struct client_opts *o = malloc(sizeof(*o));

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (parse(o, cases[i]) != -1)
			fail_msg("case %zu (%s %s %s ...) was accepted", i, cases[i][0],
				 cases[i][1], cases[i][2] ? cases[i][2] : "");
	}
	free(o);
}

static void test_share(void **state)
{
	(void)state;
	for (int w = 1; w <= 7; w++) {
		uint64_t sum = 0;
		for (int i = 0; i < w; i++)
			sum += driver_share(50003, i, w);
		assert_int_equal(sum, 50003);
	}
	assert_int_equal(driver_share(10, 0, 3), 4);
	assert_int_equal(driver_share(10, 2, 3), 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults), cmocka_unit_test(test_values),
	    cmocka_unit_test(test_sources),  cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_share),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
