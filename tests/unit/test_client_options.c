/* client/options.c: flags parse into the right units and bad flags are refused (exit 2 in
 * the program); the sources they give are the plan's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/options.h"
#include "client/plan.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The source address of connection id (network byte order), as the run's plan says. */
static in_addr_t source_of(const struct client_opts *o, uint64_t id)
{
	struct plan p;

	plan_init(&p, o);
	return plan_source(&p, id);
}

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

/* Parses like parse() and returns the first line written to stderr (static buffer). */
static const char *parse_err(struct client_opts *o, const char **args)
{
	static char line[512];
	char *argv[64];
	int argc = 0, saved = dup(STDERR_FILENO), rc;
	FILE *tmp = tmpfile();

	assert_non_null(tmp);
	argv[argc++] = (char *)"load-client";
	while (*args != NULL && argc < 63)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	dup2(fileno(tmp), STDERR_FILENO);
	rc = options_parse(o, argc, argv);
	dup2(saved, STDERR_FILENO);
	close(saved);
	assert_int_equal(rc, -1);
	rewind(tmp);
	if (fgets(line, sizeof(line), tmp) == NULL)
		line[0] = '\0';
	fclose(tmp);
	return line;
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

/* --plot without --timeline writes the timeline beside the picture. */
static void test_plot_timeline(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *alone[] = {"--server", "127.0.0.1:80", "--plot", "x.png", NULL};
	const char *both[] = {"--server",   "127.0.0.1:80", "--plot", "x.png",
			      "--timeline", "t.csv",	    NULL};

	(void)state;
	assert_int_equal(parse(o, alone), 0);
	assert_string_equal(o->timeline, "x.png.csv");
	assert_int_equal(parse(o, both), 0);
	assert_string_equal(o->timeline, "t.csv");
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
	a.s_addr = source_of(o, 0);
	assert_string_equal(inet_ntoa(a), "127.0.0.2");
	a.s_addr = source_of(o, 40);
	assert_string_equal(inet_ntoa(a), "127.0.0.3");
	free(o);
}

static void test_errors(void **state)
{
	static const char *cases[][10] = {
	    {"--connections", "10", NULL},     /* no --server */
	    {"--server", "127.0.0.1", NULL},   /* no port */
	    {"--server", "127.0.0.1:0", NULL}, /* port 0 */
	    {"--server", "127.0.0.1:80", "--connections", "0", NULL},
	    {"--server", "127.0.0.1:80", "--connections", "12x", NULL},
	    {"--server", "127.0.0.1:80", "--duration", "10", NULL}, /* no unit */
	    /* crash in a mix without a source of its own */
	    {"--server", "127.0.0.1:80", "--mix", "echo=1,crash=1", NULL},
	    {"--server", "127.0.0.1:80", "--mix", "echo=1,crash=1", "--sources", "127.0.0.2", NULL},
	    {"--server", "127.0.0.1:80", "--crash-source", "127.0.0.9", NULL}, /* no crash */
	    {"--server", "127.0.0.1:80", "--scenario", "crash", "--crash-source", "::1", NULL},
	    {"--server", "127.0.0.1:80", "--scenario", "crash", "--crash-source", "127.0.0.300",
	     NULL},
	    {"--server", "127.0.0.1:80", "--scenario", "crash", "--crash-source", "localhost",
	     NULL},
	    {"--server", "127.0.0.1:80", "--mix", "echo=1,crash=1", "--sources",
	     "127.0.0.2-127.0.0.5", "--crash-source", "127.0.0.3", NULL}, /* one of --sources */
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

static const char *ntoa(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET6)
		return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
				 (socklen_t)len);
	return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf, (socklen_t)len);
}

/* Crash connections get a source address of their own: --crash-source, or in a mix the
 * last of --sources, which the other connections then leave alone. */
static void test_crash_source(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *mix_sources[] = {"--server",  "127.0.0.1:80",	 "--mix", "echo=3,crash=1",
				     "--sources", "127.0.0.2-127.0.0.4", NULL};
	const char *flag[] = {"--server",
			      "127.0.0.1:80",
			      "--mix",
			      "echo=3,crash=1",
			      "--sources",
			      "127.0.0.2-127.0.0.4",
			      "--crash-source=127.0.0.9",
			      NULL};
	const char *only[] = {"--server", "127.0.0.1:80", "--scenario", "crash", NULL};
	const char *v6[] = {"--server",	      "[::1]:80", "--mix", "crash=1,vanish=1",
			    "--crash-source", "::2",	  NULL};
	char buf[64];
	struct in_addr a;

	(void)state;
	assert_int_equal(parse(o, mix_sources), 0);
	assert_string_equal(ntoa(&o->crash_src, buf, sizeof(buf)), "127.0.0.4");
	assert_int_equal(o->crash_srclen, sizeof(struct sockaddr_in));
	assert_int_equal(o->nsources, 2);
	a.s_addr = source_of(o, 2);
	assert_string_equal(inet_ntoa(a), "127.0.0.2"); /* round robin over .2 and .3 only */
	assert_true(mix_runs(&o->mix, SCEN_CRASH) && mix_runs(&o->mix, SCEN_ECHO));
	assert_false(mix_runs(&o->mix, SCEN_VANISH) || mix_runs(&o->mix, SCEN_MIXED));

	assert_int_equal(parse(o, flag), 0);
	assert_string_equal(ntoa(&o->crash_src, buf, sizeof(buf)), "127.0.0.9");
	assert_int_equal(o->nsources, 3);

	/* Only crash connections: nothing else can reuse their 4-tuples. */
	assert_int_equal(parse(o, only), 0);
	assert_int_equal(o->scenario, SCEN_CRASH);
	assert_int_equal(o->crash_srclen, 0);

	assert_int_equal(parse(o, v6), 0);
	assert_string_equal(ntoa(&o->crash_src, buf, sizeof(buf)), "::2");
	assert_int_equal(o->crash_srclen, sizeof(struct sockaddr_in6));
	free(o);
}

/* --reconnect and its delay and rate; the delay and the rate alone are refused, since
 * they would do nothing. */
static void test_reconnect(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	const char *plain[] = {"--server", "127.0.0.1:80", NULL};
	const char *on[] = {"--server", "127.0.0.1:80", "--reconnect", NULL};
	const char *tuned[] = {"--server", "127.0.0.1:80",	    "--reconnect-delay",
			       "2s",	   "--reconnect-rate=50/s", "--reconnect",
			       NULL};
	const char *zero[] = {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-delay=0",
			      NULL};
	static const char *bad[][6] = {
	    {"--server", "127.0.0.1:80", "--reconnect-delay", "1s", NULL}, /* no --reconnect */
	    {"--server", "127.0.0.1:80", "--reconnect-rate", "10", NULL},  /* no --reconnect */
	    {"--server", "127.0.0.1:80", "--reconnect=yes", NULL},	   /* a switch */
	    {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-delay", "10"}, /* no unit */
	    {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-delay", "2h"}, /* > 1 h */
	    {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-rate", "-1"},
	    {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-rate", "x/s"},
	    {"--server", "127.0.0.1:80", "--reconnect", "--reconnect-rate", NULL}, /* no value */
	};

	(void)state;
	assert_int_equal(parse(o, plain), 0);
	assert_int_equal(o->reconnect, 0);
	assert_int_equal(o->reconnect_delay_ms, 100);
	assert_int_equal(o->reconnect_rate, 0);
	assert_int_equal(parse(o, on), 0);
	assert_int_equal(o->reconnect, 1);
	assert_int_equal(o->reconnect_delay_ms, 100);
	assert_int_equal(parse(o, tuned), 0);
	assert_int_equal(o->reconnect, 1);
	assert_int_equal(o->reconnect_delay_ms, 2000);
	assert_int_equal(o->reconnect_rate, 50);
	assert_int_equal(parse(o, zero), 0);
	assert_int_equal(o->reconnect_delay_ms, 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(o, bad[i]) != -1)
			fail_msg("reconnect case %zu (%s %s) was accepted", i, bad[i][2],
				 bad[i][3] ? bad[i][3] : "");
	}
	free(o);
}

/* Every bad port of --server gets the one rule's message, 0 like 99999 (it used to be
 * "from 0 to 65535" for one and "must not be 0" for the other). */
static void test_server_port_rule(void **state)
{
	static const char *const ports[] = {
	    "127.0.0.1:0",   "127.0.0.1:99999",	 "127.0.0.1:65536", "127.0.0.1:-1",
	    "127.0.0.1:abc", "127.0.0.1:",	 "[::1]:0",	    "[::1]:100000",
	    "127.0.0.1:+80", "127.0.0.1:0080000"};
	struct client_opts *o = malloc(sizeof(*o));
	const char *ok[] = {"--server", "[::1]:65535", NULL};

	(void)state;
	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		const char *args[] = {"--server", ports[i], NULL};
		const char *msg = parse_err(o, args);
		if (strstr(msg, ": the port must be a number from 1 to 65535\n") == NULL)
			fail_msg("--server %s: '%s'", ports[i], msg);
	}
	assert_int_equal(parse(o, ok), 0);
	assert_int_equal(o->port, 65535);
	assert_int_equal(options_parse_port("1"), 1);
	assert_int_equal(options_parse_port("0"), -1);
	assert_int_equal(options_parse_port("65536"), -1);
	assert_int_equal(options_parse_port(" 80"), -1);
	free(o);
}

/* Every flag the usage names (--help) is one the parser knows: the usage and the parser
 * are driven by the same tables. */
static void test_usage_names_known_flags(void **state)
{
	struct client_opts *o = malloc(sizeof(*o));
	int saved = dup(STDOUT_FILENO), nflags = 0;
	FILE *tmp = tmpfile();
	char line[256];

	(void)state;
	assert_non_null(tmp);
	fflush(stdout);
	dup2(fileno(tmp), STDOUT_FILENO);
	options_usage();
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	rewind(tmp);
	while (fgets(line, sizeof(line), tmp) != NULL) {
		char *p = line;
		if (strncmp(line, "  --", 4) != 0)
			continue;
		while ((p = strstr(p, "--")) != NULL && p < line + 33) {
			char name[64];
			const char *args[] = {"--server", "127.0.0.1:80", name, "1", NULL};
			const char *msg;
			size_t n = strcspn(p, " =\n");
			snprintf(name, sizeof(name), "%.*s", (int)n, p);
			p += n;
			if (strcmp(name, "--server") == 0)
				continue;
			msg = parse(o, args) == 0 ? "" : parse_err(o, args);
			if (strstr(msg, "unknown option") != NULL)
				fail_msg("the usage names %s, the parser does not know it", name);
			nflags++;
		}
	}
	fclose(tmp);
	assert_true(nflags >= 30);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_sources),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_crash_source),
	    cmocka_unit_test(test_plot_timeline),
	    cmocka_unit_test(test_reconnect),
	    cmocka_unit_test(test_server_port_rule),
	    cmocka_unit_test(test_usage_names_known_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
