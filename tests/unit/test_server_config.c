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
	assert_int_equal(c.keepalive, 1);	     /* file over mode */
	assert_int_equal(c.close_on_eof, 0);	     /* mode default */
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

/* Each bad value of the gentler endings' keys: exit 2's message names its place. */
static void test_ending_key_errors(void **state)
{
	static const struct {
		const char *set, *want;
	} cases[] = {
	    {"max_connection_age=-2s", "--set:1: max_connection_age: must not be negative"},
	    {"drain_spread=-1s", "--set:1: drain_spread: must not be negative"},
	    {"drain_spread=10", "--set:1: drain_spread: needs a unit"},
	    {"max_connection_age=2", "--set:1: max_connection_age: needs a unit"},
	    {"max_connection_age_jitter=10", "--set:1: max_connection_age_jitter: needs a % sign"},
	    {"max_connection_age_jitter=-5%", "--set:1: max_connection_age_jitter: must not be "
					      "negative"},
	    {"max_connection_age_jitter=150%", "--set:1: max_connection_age_jitter: must be "
					       "between 0% and 50%"},
	    {"max_connection_age_grace=25h", "--set:1: max_connection_age_grace: must be between "
					     "0 and 24h"},
	    {"drain_grace=11s", "--set:1: drain_grace: shutdown_timeout (10s) must be at least "
				"drain_spread + drain_grace (0 + 11s)"},
	};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *sets[] = {cases[i].set};

		if (load(&c, NULL, sets, 1, err) != -1)
			fail_msg("%s accepted", cases[i].set);
		if (strstr(err, cases[i].want) == NULL)
			fail_msg("%s: \"%s\", wanted \"%s\"", cases[i].set, err, cases[i].want);
	}
}

/* shutdown_timeout >= drain_spread + drain_grace: the error names where the key set last
 * among the three was set (a file's line, or the --set that made it fail). */
static void test_drain_window_rule(void **state)
{
	const char *path = write_tmp("shutdown_timeout = 8s\n\ndrain_grace = 3s\n");
	const char *spread[] = {"drain_spread=6s"};
	const char *fits[] = {"drain_spread=5s"};
	const char *shorter[] = {"drain_spread=1s", "shutdown_timeout=2s"};
	struct server_config c;
	char err[CONF_ERR_MAX], want[160];

	(void)state;
	assert_int_equal(load(&c, path, fits, 1, err), 0);
	assert_int_equal(c.drain_spread, 5000);
	assert_int_equal(c.drain_grace, 3000);
	assert_int_equal(load(&c, path, spread, 1, err), -1);
	assert_non_null(strstr(err, "--set:1: drain_spread: shutdown_timeout (8s) must be at "
				    "least drain_spread + drain_grace (6s + 3s)"));
	assert_int_equal(load(&c, path, shorter, 2, err), -1);
	assert_non_null(strstr(err, "--set:2: shutdown_timeout: shutdown_timeout (2s)"));
	unlink(path);
	path = write_tmp("drain_spread = 9s\ndrain_grace = 2s\n");
	assert_int_equal(load(&c, path, NULL, 0, err), -1);
	snprintf(want, sizeof(want), "%s:2: drain_grace: shutdown_timeout (10s)", path);
	assert_non_null(strstr(err, want));
	unlink(path);
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

/* Every key of cfg equals the same key of want; fails naming the first that differs. */
static void assert_same_config(const struct server_config *cfg, const struct server_config *want,
			       const char *what)
{
	for (size_t i = 0; i < config_nkeys; i++) {
		char a[CONF_STR_MAX + 8], b[CONF_STR_MAX + 8];
		conf_format_value(&config_keys[i], cfg, a, sizeof(a));
		conf_format_value(&config_keys[i], want, b, sizeof(b));
		if (strcmp(a, b) != 0)
			fail_msg("%s: %s = %s, built-in default %s", what, config_keys[i].name, a,
				 b);
	}
}

/* conf/server.conf must give exactly the built-in defaults, in either mode: the keys it
 * sets equal the defaults, and the keys the mode decides are left to the mode (a file
 * that set close_on_eof = yes made `--mode leaky` a correct server in disguise). */
static void test_conf_file_matches_defaults(void **state)
{
	const char *leaky[] = {"mode=leaky"};
	struct server_config from_file, builtin;
	char err[CONF_ERR_MAX];

	(void)state;
	if (load(&from_file, "conf/server.conf", NULL, 0, err) != 0)
		fail_msg("conf/server.conf: %s", err);
	assert_int_equal(load(&builtin, NULL, NULL, 0, err), 0);
	assert_same_config(&from_file, &builtin, "conf/server.conf");
	if (load(&from_file, "conf/server.conf", leaky, 1, err) != 0)
		fail_msg("conf/server.conf --mode leaky: %s", err);
	assert_int_equal(load(&builtin, NULL, leaky, 1, err), 0);
	assert_same_config(&from_file, &builtin, "conf/server.conf --mode leaky");
}

/* The value a commented line "# KEY = VALUE  # MODE mode's default" of conf/server.conf
 * documents for `mode`, formatted in the key's syntax; 0, or -1 when there is no line. */
static int documented_default(const char *text, const struct conf_key *k, const char *mode,
			      char *out, size_t outlen)
{
	char head[64], tail[64], val[64], reason[CONF_ERR_MAX];
	struct server_config c;
	const char *p;

	snprintf(head, sizeof(head), "\n# %s = ", k->name);
	snprintf(tail, sizeof(tail), "# %s mode's default\n", mode);
	for (p = strstr(text, head); p != NULL; p = strstr(p + 1, head)) {
		const char *eol = strchr(p + 1, '\n');
		if (eol == NULL || sscanf(p + strlen(head), "%63s", val) != 1)
			continue;
		if ((size_t)(eol + 1 - p) < strlen(tail) ||
		    strncmp(eol + 1 - strlen(tail), tail, strlen(tail)) != 0)
			continue;
		memset(&c, 0, sizeof(c));
		if (conf_parse_value(k, &c, val, reason, sizeof(reason)) != 0)
			fail_msg("conf/server.conf: # %s = %s: %s", k->name, val, reason);
		conf_format_value(k, &c, out, outlen);
		return 0;
	}
	return -1;
}

/* Each key whose default differs by mode is documented, commented out, with the value of
 * each mode, and those values are the built-in ones. */
static void test_conf_file_documents_mode_defaults(void **state)
{
	static char text[1 << 16];
	FILE *f = fopen("conf/server.conf", "r");
	size_t n;

	(void)state;
	assert_non_null(f);
	n = fread(text + 1, 1, sizeof(text) - 2, f);
	fclose(f);
	text[0] = '\n';
	text[n + 1] = '\0';
	for (size_t i = 0; i < config_nkeys; i++) {
		const struct conf_key *k = &config_keys[i];
		for (int m = 0; k->def[1] != NULL && m < CONF_MODES; m++) {
			const char *mode = m == MODE_LEAKY ? "leaky" : "correct";
			const char *sets[] = {m == MODE_LEAKY ? "mode=leaky" : "mode=correct"};
			char doc[CONF_STR_MAX + 8], want[CONF_STR_MAX + 8], err[CONF_ERR_MAX];
			struct server_config builtin;

			if (documented_default(text, k, mode, doc, sizeof(doc)) < 0)
				fail_msg(
				    "conf/server.conf has no \"# %s = ...  # %s mode's default\"",
				    k->name, mode);
			assert_int_equal(load(&builtin, NULL, sets, 1, err), 0);
			conf_format_value(k, &builtin, want, sizeof(want));
			if (strcmp(doc, want) != 0)
				fail_msg(
				    "conf/server.conf: %s mode's %s documented %s, built-in %s",
				    mode, k->name, doc, want);
		}
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

static unsigned reload_of(const char *name)
{
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return config_keys[i].flags & CONF_F_RELOAD_MASK;
	fail_msg("no key %s", name);
	return 0;
}

/* Every key says when a reload applies it, exactly one way (the lifecycle issue's list). */
static void test_every_key_one_reload_category(void **state)
{
	(void)state;
	for (size_t i = 0; i < config_nkeys; i++) {
		unsigned r = config_keys[i].flags & CONF_F_RELOAD_MASK;

		if (r != CONF_F_RELOAD_NOW && r != CONF_F_RELOAD_NEW_CONNS &&
		    r != CONF_F_RELOAD_RESTART)
			fail_msg("%s: reload category flags %#x, not exactly one",
				 config_keys[i].name, r);
	}
	assert_int_equal(reload_of("listen"), CONF_F_RELOAD_RESTART);
	assert_int_equal(reload_of("workers"), CONF_F_RELOAD_RESTART);
	assert_int_equal(reload_of("metrics_listen"), CONF_F_RELOAD_RESTART);
	assert_int_equal(reload_of("mode"), CONF_F_RELOAD_RESTART);
	assert_int_equal(reload_of("keepalive_idle"), CONF_F_RELOAD_NEW_CONNS);
	assert_int_equal(reload_of("user_timeout"), CONF_F_RELOAD_NEW_CONNS);
	assert_int_equal(reload_of("fin_timeout"), CONF_F_RELOAD_NOW);
	assert_int_equal(reload_of("backlog"), CONF_F_RELOAD_NOW);
	assert_int_equal(reload_of("log_level"), CONF_F_RELOAD_NOW);
}

/* The log_level key's value is the enum log_level: its choices are log.c's one list. */
static void test_log_level_choices_are_the_levels(void **state)
{
	const struct conf_key *k = NULL;
	enum log_level lvl;
	size_t n = 0;

	(void)state;
	for (size_t i = 0; i < config_nkeys; i++)
		if (strcmp(config_keys[i].name, "log_level") == 0)
			k = &config_keys[i];
	assert_non_null(k);
	for (; k->choices[n] != NULL; n++) {
		assert_int_equal(log_level_parse(k->choices[n], &lvl), 0);
		assert_int_equal(lvl, n);
	}
	assert_int_equal(n, LOG_LVL_DEBUG + 1);
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

/* A key that turns a mechanism against the mode (leaky with close_on_eof=yes, correct with
 * keepalive=no) is one warning, however many keys do it; the mode's own values none. */
static void test_mixed_mode_warns_once(void **state)
{
	const char *leaky[] = {"mode=leaky"};
	const char *leaky_mixed[] = {"mode=leaky", "close_on_eof=yes", "heartbeat_timeout=5s"};
	const char *correct_mixed[] = {"keepalive=no", "close_on_eof=no", "fin_timeout=0"};
	const char *correct_tuned[] = {"heartbeat_timeout=90s", "keepalive=yes"};
	struct server_config c;
	char err[CONF_ERR_MAX];

	(void)state;
	log_set_level(LOG_LVL_ERROR);
	assert_int_equal(load(&c, NULL, leaky, 1, err), 0);
	assert_int_equal(config_warn(&c), 0);
	assert_int_equal(load(&c, NULL, leaky_mixed, 3, err), 0);
	assert_int_equal(config_warn(&c), 1);
	assert_int_equal(load(&c, NULL, correct_mixed, 3, err), 0);
	assert_int_equal(config_warn(&c), 1);
	assert_int_equal(load(&c, NULL, correct_tuned, 2, err), 0);
	assert_int_equal(config_warn(&c), 0);
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
	    cmocka_unit_test(test_ending_key_errors),
	    cmocka_unit_test(test_drain_window_rule),
	    cmocka_unit_test(test_conf_file_matches_defaults),
	    cmocka_unit_test(test_conf_file_documents_mode_defaults),
	    cmocka_unit_test(test_every_default_in_range),
	    cmocka_unit_test(test_warnings),
	    cmocka_unit_test(test_every_key_one_reload_category),
	    cmocka_unit_test(test_log_level_choices_are_the_levels),
	    cmocka_unit_test(test_mixed_mode_warns_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
