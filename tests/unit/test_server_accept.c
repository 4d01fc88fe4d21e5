/* Unit test of server.c's accept path with fault injection: accept4() is wrapped at link
 * time (-Wl,--wrap=accept4), so ENFILE and EMFILE, which cannot be provoked on a shared
 * host without starving it, are injected. The server must pause its listener for
 * accept_pause (not spin), shed the waiting client with the reserve fd, and resume.
 * event_add() is wrapped too (-Wl,--wrap=event_add), so arming one given event fails. */
#include "server/config.h"
#include "server/server.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);
int __real_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags);

int __wrap_event_add(struct event *ev, const struct timeval *tv);
int __real_event_add(struct event *ev, const struct timeval *tv);

static struct event *fail_add; /* the next event_add of this event fails, once */

int __wrap_event_add(struct event *ev, const struct timeval *tv)
{
	if (ev != NULL && ev == fail_add) {
		fail_add = NULL;
		errno = ENOMEM;
		return -1;
	}
	return __real_event_add(ev, tv);
}

static int inject_errno; /* the next accept4 fails with this, once */
static int inject_skip;	 /* ... after this many calls that are not failed */
static int accept_calls;

int __wrap_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	accept_calls++;
	if (inject_errno != 0 && inject_skip > 0) {
		inject_skip--;
	} else if (inject_errno != 0) {
		errno = inject_errno;
		inject_errno = 0;
		return -1;
	}
	return __real_accept4(fd, sa, len, flags);
}

static int client_to(int port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	return fd;
}

static void start(struct server *srv, struct server_config *cfg)
{
	const char *sets[] = {"listen=127.0.0.1:0", "accept_pause=50ms", "log_level=error"};
	struct config_args a = {.sets = sets, .nsets = 3};
	const struct server_params params = SERVER_PARAMS_INIT;
	char err[CONF_ERR_MAX];
	int code;

	assert_int_equal(config_load(cfg, &a, err, sizeof(err)), 0);
	log_set_level(LOG_LVL_ERROR);
	assert_int_equal(server_init(srv, cfg, &params, &code), 0);
}

/* The port the server listens on (port 0 in the config). */
static int listener_port(const struct server *srv)
{
	struct sockaddr_in in;
	socklen_t len = sizeof(in);

	assert_int_equal(getsockname(srv->lfd, (struct sockaddr *)&in, &len), 0);
	return ntohs(in.sin_port);
}

static void check_fd_limit_error(int err)
{
	struct server srv;
	struct server_config cfg;
	char c;
	int port, shed, served;

	start(&srv, &cfg);
	port = listener_port(&srv);
	shed = client_to(port);
	inject_errno = err;
	accept_calls = 0;
	event_base_loop(srv.base, EVLOOP_ONCE);
	assert_int_equal(srv.stats.emfile_pauses, 1);
	assert_int_equal(srv.stats.shed, 1);
	assert_int_equal(srv.stats.accepted, 0);
	assert_int_equal(read(shed, &c, 1), 0); /* the shed client got EOF at once */
	assert_false(event_pending(srv.ev_accept, EV_READ, NULL)); /* paused, not spinning */
	assert_true(evtimer_pending(srv.ev_accept_resume, NULL));
	/* While paused a new client waits in the queue; no accept is attempted. */
	served = client_to(port);
	accept_calls = 0;
	event_base_loop(srv.base, EVLOOP_ONCE); /* the pause timer: listener resumes, accepts */
	assert_true(event_pending(srv.ev_accept, EV_READ, NULL));
	while (srv.stats.accepted == 0)
		event_base_loop(srv.base, EVLOOP_ONCE);
	assert_int_equal(srv.stats.accepted, 1);
	assert_int_equal(srv.stats.open, 1);
	assert_true(accept_calls <= 3);
	close(shed);
	close(served);
	server_free(&srv);
}

static void test_enfile(void **state)
{
	(void)state;
	check_fd_limit_error(ENFILE);
}

static void test_emfile(void **state)
{
	(void)state;
	check_fd_limit_error(EMFILE);
}

/* ECONNABORTED (the client reset while queued) is skipped, not a pause. */
static void test_econnaborted_is_skipped(void **state)
{
	struct server srv;
	struct server_config cfg;
	int fd;

	(void)state;
	start(&srv, &cfg);
	fd = client_to(listener_port(&srv));
	inject_errno = ECONNABORTED;
	while (srv.stats.accepted == 0)
		event_base_loop(srv.base, EVLOOP_ONCE);
	assert_int_equal(srv.stats.emfile_pauses, 0);
	assert_true(event_pending(srv.ev_accept, EV_READ, NULL));
	close(fd);
	server_free(&srv);
}

/* At the fd limit Linux's accept4() fails with EMFILE even when the queue is empty: here
 * the batch goes on after accepting the last client. Nobody waits, so nothing is shed,
 * no pause is counted and the listener stays armed (an empty queue is not readable). */
static void test_emfile_on_empty_queue_is_no_pause(void **state)
{
	struct server srv;
	struct server_config cfg;
	int fd;

	(void)state;
	start(&srv, &cfg);
	fd = client_to(listener_port(&srv));
	inject_skip = 1;
	inject_errno = EMFILE;
	while (srv.stats.accepted == 0)
		event_base_loop(srv.base, EVLOOP_ONCE);
	assert_int_equal(inject_errno, 0); /* the EMFILE was seen */
	assert_int_equal(srv.stats.emfile_pauses, 0);
	assert_int_equal(srv.stats.shed, 0);
	assert_true(event_pending(srv.ev_accept, EV_READ, NULL));
	assert_false(evtimer_pending(srv.ev_accept_resume, NULL));
	close(fd);
	server_free(&srv);
}

/* The pause timer cannot be armed: the listener must not be unwatched, since nothing
 * would watch it again; the next client is served. */
static void test_pause_timer_fails_listener_stays(void **state)
{
	struct server srv;
	struct server_config cfg;
	int port, shed, served;

	(void)state;
	start(&srv, &cfg);
	port = listener_port(&srv);
	shed = client_to(port);
	inject_errno = EMFILE;
	fail_add = srv.ev_accept_resume;
	event_base_loop(srv.base, EVLOOP_ONCE);
	assert_null(fail_add); /* the failure was injected */
	assert_int_equal(srv.stats.shed, 1);
	assert_int_equal(srv.stats.emfile_pauses, 0); /* not paused */
	assert_true(event_pending(srv.ev_accept, EV_READ, NULL));
	assert_false(evtimer_pending(srv.ev_accept_resume, NULL));
	served = client_to(port);
	while (srv.stats.accepted == 0)
		event_base_loop(srv.base, EVLOOP_ONCE);
	assert_int_equal(srv.stats.open, 1);
	close(shed);
	close(served);
	server_free(&srv);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enfile),
	    cmocka_unit_test(test_emfile),
	    cmocka_unit_test(test_econnaborted_is_skipped),
	    cmocka_unit_test(test_emfile_on_empty_queue_is_no_pause),
	    cmocka_unit_test(test_pause_timer_fails_listener_stays),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
