/* Unit tests of server/config.c: the key table, defaults by mode, precedence, and that
 * conf/server.conf documents exactly the built-in defaults. */
#include "server/config.h"
#include "log.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int load(struct server_config *cfg, const char *file, const char **sets, int nsets,
		char *err)
{
	struct config_args a = {.file = file, .sets = sets, .nsets = nsets};

	return config_load(cfg, &a, err, CONF_ERR_MAX);
}

static char *write_tmp(const char *text)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/teardown-cfg-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_correct_defaults(void **state)
{
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	assert_int_equal(load(&c, NULL, NULL, 0, err), 0);
	assert_int_equal(c.mode, MODE_CORRECT);
	assert_string_equal(c.listen, "127.0.0.1:7000");
	assert_int_equal(c.close_on_eof, 1);
	assert_int_equal(c.early_close, 1);
	assert_int_equal(c.keepalive, 1);
	assert_int_equal(c.reset_dead_peers, 1);
	assert_int_equal(c.heartbeat_timeout, 60000);
	assert_int_equal(c.fin_timeout, 30000);
	assert_int_equal(c.write_timeout, 30000);
	/* keepalive detection about two minutes; user_timeout a little above it */
	assert_int_equal(c.keepalive_idle + c.keepalive_interval * c.keepalive_count, 120000);
	assert_true(c.user_timeout > 120000 && c.user_timeout <= 150000);
	assert_int_equal(c.output_high_watermark, 64 * 1024);
	assert_int_equal(c.workers, 1);
	assert_string_equal(c.metrics_listen, "");
}

static void test_leaky_defaults(void **state)
{
	const char *sets[] = {"mode=leaky"};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	assert_int_equal(load(&c, NULL, sets, 1, err), 0);
	assert_int_equal(c.mode, MODE_LEAKY);
	assert_int_equal(c.close_on_eof, 0);
	assert_int_equal(c.early_close, 0);
	assert_int_equal(c.keepalive, 0);
	assert_int_equal(c.reset_dead_peers, 0);
	assert_int_equal(c.heartbeat_timeout, 0);
	assert_int_equal(c.user_timeout, 0);
	assert_int_equal(c.fin_timeout, 0);
	assert_int_equal(c.write_timeout, 30000); /* not a mode default */
}

/* The mode sets defaults; the file overrides them; the command line overrides the file. */
static void test_precedence(void **state)
{
	const char *path = write_tmp("mode = leaky\nkeepalive = yes\nheartbeat_timeout = 5s\n");
	const char *sets[] = {"heartbeat_timeout=7s", "fin_timeout=2s"};
	const char *sets2[] = {"mode=correct"};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	assert_int_equal(load(&c, path, sets, 2, err), 0);
	assert_int_equal(c.mode, MODE_LEAKY);
	assert_int_equal(c.keepalive, 1);          /* file over mode */
	assert_int_equal(c.close_on_eof, 0);       /* mode default */
	assert_int_equal(c.heartbeat_timeout, 7000); /* command line over file */
	assert_int_equal(c.fin_timeout, 2000);
	/* --mode on the command line changes the defaults of what the file left unset */
	assert_int_equal(load(&c, path, sets2, 1, err), 0);
	assert_int_equal(c.mode, MODE_CORRECT);
	assert_int_equal(c.close_on_eof, 1);
	assert_int_equal(c.heartbeat_timeout, 5000);
	unlink(path);
}

static void test_set_errors(void **state)
{
	const char *bad_unit[] = {"fin_timeout=1s", "keepalive_idle=1500ms"};
	const char *unknown[] = {"no_such_key=1"};
	const char *bad_mode[] = {"mode=sloppy"};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	assert_int_equal(load(&c, NULL, bad_unit, 2, err), -1);
	assert_non_null(strstr(err, "--set:2: keepalive_idle: "));
	assert_int_equal(load(&c, NULL, unknown, 1, err), -1);
	assert_non_null(strstr(err, "--set:1: no_such_key: "));
	assert_int_equal(load(&c, NULL, bad_mode, 1, err), -1);
	assert_non_null(strstr(err, "--set:1: mode: "));
}

static void test_file_error(void **state)
{
	const char *path = write_tmp("# ok\nworkers = 2\nbacklog = 70000\n");
	struct server_config c;
	char err[CONF_ERR_MAX], want[128];

	(void)state;
	assert_int_equal(load(&c, path, NULL, 0, err), -1);
	snprintf(want, sizeof(want), "%s:3: backlog: ", path);
	assert_non_null(strstr(err, want));
	unlink(path);
}

/* conf/server.conf must set every key of the table (except the optional endpoint) to
 * exactly the built-in default: the documentation cannot drift from the code. */
static void test_conf_file_matches_defaults(void **state)
{
	struct server_config from_file, builtin;
	char err[CONF_ERR_MAX];

	(void)state;
	if (load(&from_file, "conf/server.conf", NULL, 0, err) != 0)
		fail_msg("conf/server.conf: %s", err);
	assert_int_equal(load(&builtin, NULL, NULL, 0, err), 0);
	for (size_t i = 0; i < config_nkeys; i++) {
		char a[CONF_STR_MAX + 8], b[CONF_STR_MAX + 8];
		conf_format_value(&config_keys[i], &from_file, a, sizeof(a));
		conf_format_value(&config_keys[i], &builtin, b, sizeof(b));
		if (strcmp(a, b) != 0)
			fail_msg("conf/server.conf: %s = %s, built-in default %s",
				 config_keys[i].name, a, b);
	}
}

static void test_every_default_in_range(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct conf_key *k = &config_keys[i];
		assert_non_null(k->help);
		for (int m = 0; m < CONF_MODES; m++) {
			struct server_config c;
			char reason[CONF_ERR_MAX];
			const char *d = k->def[m] ? k->def[m] : k->def[0];
			if (d == NULL)
				continue;
			if (conf_parse_value(k, &c, d, reason, sizeof(reason)) != 0)
				fail_msg("%s default %s: %s", k->name, d, reason);
		}
	}
}

static void test_warnings(void **state)
{
	const char *sets[] = {"user_timeout=10s", "keepalive_idle=60s"};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	log_set_level(LOG_LVL_ERROR); /* the warnings are counted, not shown */
	assert_int_equal(load(&c, NULL, NULL, 0, err), 0);
	assert_int_equal(config_warn(&c), 0);
	assert_int_equal(load(&c, NULL, sets, 2, err), 0);
	assert_true(config_warn(&c) >= 1);
	log_set_level(LOG_LVL_INFO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_correct_defaults),
		cmocka_unit_test(test_leaky_defaults),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_set_errors),
		cmocka_unit_test(test_file_error),
		cmocka_unit_test(test_conf_file_matches_defaults),
		cmocka_unit_test(test_every_default_in_range),
		cmocka_unit_test(test_warnings),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
