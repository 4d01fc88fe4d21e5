/* Unit test of server_deadline_tv (server.c): a deadline's timeval is libevent's common
 * timeout for its duration, the same one for the same duration, and a plain timeval when
 * the base has no common timeout left (libevent allows 256 per base), never NULL (which
 * would turn the deadline off). */
#include "server/server.h"
#include "log.h"

#include <event2/event.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The common timeout queues libevent allows per base (MAX_COMMON_TIMEOUTS in event.c). */
#define LIBEVENT_MAX_COMMON 256

static void test_off(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval fb;

	(void)state;
	assert_non_null(base);
	assert_null(server_deadline_tv(base, 0, &fb));
	assert_null(server_deadline_tv(base, -5, &fb));
	event_base_free(base);
}

static void test_reused_per_duration(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval fb1, fb2, fb3;
	const struct timeval *a, *b, *c;

	(void)state;
	a = server_deadline_tv(base, 2000, &fb1);
	b = server_deadline_tv(base, 2000, &fb2);
	c = server_deadline_tv(base, 3000, &fb3);
	assert_non_null(a);
	assert_ptr_equal(a, b); /* one queue per distinct duration */
	assert_ptr_not_equal(a, &fb1);
	assert_ptr_not_equal(a, c);
	assert_int_equal(a->tv_sec, 2);
	assert_int_equal(c->tv_sec, 3);
	event_base_free(base);
}

static int fired;

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	fired++;
}

/* Every common timeout of the base in use: the deadline gets a plain timer that rings. */
static void test_fallback_when_none_left(void **state)
{
	struct event_base *base = event_base_new();
	struct timeval fb = {0, 0};
	const struct timeval *tv;
	struct event *ev;

	(void)state;
	log_set_level(LOG_LVL_ERROR); /* the warning is expected */
	for (int i = 0; i < LIBEVENT_MAX_COMMON; i++) {
		struct timeval d = {100 + i, 0};
		assert_non_null(event_base_init_common_timeout(base, &d));
	}
	tv = server_deadline_tv(base, 5, &fb);
	assert_ptr_equal(tv, &fb);
	assert_int_equal(fb.tv_sec, 0);
	assert_int_equal(fb.tv_usec, 5000);
	ev = evtimer_new(base, on_timer, NULL);
	assert_non_null(ev);
	fired = 0;
	assert_int_equal(evtimer_add(ev, tv), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(fired, 1);
	/* A duration that already has a queue keeps it. */
	{
		struct timeval fb2, d = {100, 0};
		assert_ptr_equal(server_deadline_tv(base, 100000, &fb2),
				 event_base_init_common_timeout(base, &d));
	}
	event_free(ev);
	event_base_free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_off),
	    cmocka_unit_test(test_reused_per_duration),
	    cmocka_unit_test(test_fallback_when_none_left),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
