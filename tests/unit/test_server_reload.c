/* Unit tests of server/reload.c: each key's reload category, the list of changed keys, a
 * port 0 that names the bound port, and what a running process copies in place. */
#include "server/reload.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void defaults(struct server_config *cfg)
{
	struct config_args a = {0};
	char err[CONF_ERR_MAX];

	assert_int_equal(config_load(cfg, &a, err, sizeof(err)), 0);
}

static void test_categories(void **state)
{
	(void)state;
	assert_int_equal(reload_kind_of("listen"), RELOAD_GENERATION);
	assert_int_equal(reload_kind_of("metrics_listen"), RELOAD_GENERATION);
	assert_int_equal(reload_kind_of("mode"), RELOAD_GENERATION);
	assert_int_equal(reload_kind_of("workers"), RELOAD_WORKERS);
	assert_int_equal(reload_kind_of("keepalive_idle"), RELOAD_NEW_CONNS);
	assert_int_equal(reload_kind_of("user_timeout"), RELOAD_NEW_CONNS);
	assert_int_equal(reload_kind_of("heartbeat_timeout"), RELOAD_NOW);
	assert_int_equal(reload_kind_of("backlog"), RELOAD_NOW);
	/* every key of the table has exactly one category */
	for (size_t i = 0; i < config_nkeys; i++) {
		unsigned k = reload_kind_of(config_keys[i].name);
		assert_true(k != 0 && (k & (k - 1)) == 0);
	}
}

static void test_diff(void **state)
{
	struct server_config a, b;
	char keys[256];

	(void)state;
	defaults(&a);
	b = a;
	assert_int_equal(reload_diff(&a, &b, keys, sizeof(keys)), 0);
	assert_string_equal(keys, "");
	b.heartbeat_timeout = 5000;
	b.user_timeout = 1000;
	assert_int_equal(reload_diff(&a, &b, keys, sizeof(keys)), RELOAD_NOW | RELOAD_NEW_CONNS);
	assert_string_equal(keys, "heartbeat_timeout, user_timeout");
	b.workers = 3;
	snprintf(b.listen, sizeof(b.listen), "127.0.0.1:9");
	assert_int_equal(reload_diff(&a, &b, keys, sizeof(keys)) &
			     (RELOAD_WORKERS | RELOAD_GENERATION),
			 RELOAD_WORKERS | RELOAD_GENERATION);
	assert_non_null(strstr(keys, "listen"));
	assert_non_null(strstr(keys, "workers"));
}

static void test_keep_port(void **state)
{
	struct server_config cur, next;

	(void)state;
	defaults(&cur);
	next = cur;
	snprintf(cur.listen, sizeof(cur.listen), "127.0.0.1:4321"); /* bound from port 0 */
	snprintf(next.listen, sizeof(next.listen), "127.0.0.1:0");
	reload_keep_port(&cur, &next);
	assert_string_equal(next.listen, "127.0.0.1:4321");
	snprintf(next.listen, sizeof(next.listen), "127.0.0.2:0"); /* another host: a change */
	reload_keep_port(&cur, &next);
	assert_string_equal(next.listen, "127.0.0.2:0");
	snprintf(next.listen, sizeof(next.listen), "127.0.0.1:5"); /* a port: a change */
	reload_keep_port(&cur, &next);
	assert_string_equal(next.listen, "127.0.0.1:5");
}

static void test_copy_live(void **state)
{
	struct server_config cur, next;

	(void)state;
	defaults(&cur);
	next = cur;
	next.workers = 4;
	next.mode = MODE_LEAKY;
	next.heartbeat_timeout = 123;
	snprintf(next.listen, sizeof(next.listen), "127.0.0.1:9");
	snprintf(next.metrics_listen, sizeof(next.metrics_listen), "127.0.0.1:10");
	reload_copy_live(&cur, &next);
	assert_int_equal(cur.heartbeat_timeout, 123);
	assert_int_equal(cur.workers, 1);
	assert_int_equal(cur.mode, MODE_CORRECT);
	assert_string_equal(cur.listen, "127.0.0.1:7000");
	assert_string_equal(cur.metrics_listen, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_categories),
	    cmocka_unit_test(test_diff),
	    cmocka_unit_test(test_keep_port),
	    cmocka_unit_test(test_copy_live),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
