/* Unit tests of common/listenfds.c: sockets passed in sd_listen_fds(3)'s convention are
 * taken only when LISTEN_PID names this process and LISTEN_FDS is a count of open
 * descriptors; the variables are gone afterwards either way; a passed descriptor is
 * accepted only if it is a listening TCP socket on the configured address. */
#include "listenfds.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static char err[256];

static void set_env(const char *pid, const char *fds, const char *names)
{
	char own[32];

	if (pid != NULL && strcmp(pid, "self") == 0) {
		snprintf(own, sizeof(own), "%d", (int)getpid());
		pid = own;
	}
	pid ? setenv("LISTEN_PID", pid, 1) : unsetenv("LISTEN_PID");
	fds ? setenv("LISTEN_FDS", fds, 1) : unsetenv("LISTEN_FDS");
	names ? setenv("LISTEN_FDNAMES", names, 1) : unsetenv("LISTEN_FDNAMES");
}

static void assert_env_gone(void)
{
	assert_null(getenv("LISTEN_PID"));
	assert_null(getenv("LISTEN_FDS"));
	assert_null(getenv("LISTEN_FDNAMES"));
}

/* A TCP socket on 127.0.0.1, port 0; listening when asked. *sa gets its address. */
static int tcp_on_loopback(int listening, struct sockaddr_in *sa)
{
	socklen_t len = sizeof(*sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)sa, sizeof(*sa)), 0);
	if (listening)
		assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)sa, &len), 0);
	return fd;
}

static void test_nothing_passed(void **state)
{
	struct listenfds l;

	(void)state;
	set_env(NULL, NULL, NULL);
	assert_int_equal(listenfds_take(&l, err, sizeof(err)), 0);
	assert_int_equal(l.n, 0);
}

static void test_not_our_pid(void **state)
{
	struct listenfds l;

	(void)state;
	set_env("1", "1", NULL);
	assert_int_equal(listenfds_take(&l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "LISTEN_PID=1 is not this process"));
	assert_int_equal(l.n, 0);
	assert_env_gone();
}

static void test_garbage_counts(void **state)
{
	static const char *bad[] = {"abc", "2x", "-1", "", " 1", "17", "99999999999999999999"};
	struct listenfds l;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		set_env("self", bad[i], NULL);
		assert_int_equal(listenfds_take(&l, err, sizeof(err)), -1);
		assert_non_null(strstr(err, "LISTEN_FDS="));
		assert_int_equal(l.n, 0);
		assert_env_gone();
	}
	set_env("12ab", "1", NULL);
	assert_int_equal(listenfds_take(&l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a process id"));
}

/* fd 3 must be free for these cases (nothing in this test opens it first). */
static void test_closed_descriptor(void **state)
{
	struct listenfds l;

	(void)state;
	if (fcntl(LISTENFDS_START, F_GETFD) >= 0)
		skip();
	set_env("self", "1", NULL);
	assert_int_equal(listenfds_take(&l, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "descriptor 3"));
	assert_int_equal(l.n, 0);
}

static void test_takes_and_checks(void **state)
{
	struct sockaddr_in sa, other;
	struct listenfds l;
	int fd;

	(void)state;
	if (fcntl(LISTENFDS_START, F_GETFD) >= 0)
		skip();
	fd = tcp_on_loopback(1, &sa);
	if (fd != LISTENFDS_START) { /* the lowest free descriptor may be 3 itself */
		assert_int_equal(dup2(fd, LISTENFDS_START), LISTENFDS_START);
		close(fd);
	}
	set_env("self", "1", "echo");
	if (listenfds_take(&l, err, sizeof(err)) != 1)
		fail_msg("%s", err);
	assert_int_equal(l.fd[0], LISTENFDS_START);
	assert_string_equal(l.name[0], "echo");
	assert_true(fcntl(LISTENFDS_START, F_GETFD) & FD_CLOEXEC);
	assert_env_gone();
	assert_int_equal(
	    listenfds_check(l.fd[0], (struct sockaddr *)&sa, sizeof(sa), err, sizeof(err)), 0);
	other = sa;
	other.sin_port =
	    htons((uint16_t)(ntohs(sa.sin_port) == 65535 ? 1 : ntohs(sa.sin_port) + 1));
	assert_int_equal(
	    listenfds_check(l.fd[0], (struct sockaddr *)&other, sizeof(other), err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "the config says"));
	close(LISTENFDS_START);
}

static void test_check_refuses(void **state)
{
	struct sockaddr_in sa;
	int p[2], fd, u;

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(
	    listenfds_check(p[0], (struct sockaddr *)&sa, sizeof(sa), err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a socket"));
	close(p[0]);
	close(p[1]);
	fd = tcp_on_loopback(0, &sa);
	assert_int_equal(listenfds_check(fd, (struct sockaddr *)&sa, sizeof(sa), err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not listening"));
	close(fd);
	u = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(u >= 0);
	assert_int_equal(listenfds_check(u, (struct sockaddr *)&sa, sizeof(sa), err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "not a TCP socket"));
	close(u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nothing_passed),   cmocka_unit_test(test_not_our_pid),
	    cmocka_unit_test(test_garbage_counts),   cmocka_unit_test(test_closed_descriptor),
	    cmocka_unit_test(test_takes_and_checks), cmocka_unit_test(test_check_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
