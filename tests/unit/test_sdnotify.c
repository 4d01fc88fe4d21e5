/* Unit tests of common/sdnotify.c: each message arrives as one datagram at the socket
 * named by NOTIFY_SOCKET (a path and an abstract name); without it nothing is sent; a bad
 * name is an error, never a crash or a block. */
#include "sdnotify.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

/* A datagram socket bound to name ("/path" or "@abstract"); NOTIFY_SOCKET set to it. */
static int receiver(const char *name)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t n = strlen(name);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, n);
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		unlink(name);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa,
			      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)),
			 0);
	assert_int_equal(setenv("NOTIFY_SOCKET", name, 1), 0);
	return fd;
}

static void expect_msg(int fd, const char *want_prefix)
{
	char buf[512];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n > 0);
	buf[n] = '\0';
	assert_memory_equal(buf, want_prefix, strlen(want_prefix));
}

static void test_path_socket(void **state)
{
	char path[64];
	int fd;

	(void)state;
	snprintf(path, sizeof(path), "/tmp/teardown-notify-%d", (int)getpid());
	fd = receiver(path);
	assert_true(sdnotify_enabled());
	assert_int_equal(sdnotify_ready(), 0);
	expect_msg(fd, "READY=1");
	assert_int_equal(sdnotify_reloading(), 0);
	expect_msg(fd, "RELOADING=1\nMONOTONIC_USEC=");
	assert_int_equal(sdnotify_stopping(), 0);
	expect_msg(fd, "STOPPING=1");
	assert_int_equal(sdnotify_mainpid(1234), 0);
	expect_msg(fd, "MAINPID=1234");
	assert_int_equal(sdnotify_extend_timeout(5000000), 0);
	expect_msg(fd, "EXTEND_TIMEOUT_USEC=5000000");
	assert_int_equal(sdnotify_sendf("STATUS=%d open", 7), 0);
	expect_msg(fd, "STATUS=7 open");
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract_socket(void **state)
{
	char name[64];
	int fd;

	(void)state;
	snprintf(name, sizeof(name), "@teardown-notify-%d", (int)getpid());
	fd = receiver(name);
	assert_int_equal(sdnotify_ready(), 0);
	expect_msg(fd, "READY=1");
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

static void test_unset_does_nothing(void **state)
{
	(void)state;
	unsetenv("NOTIFY_SOCKET");
	assert_false(sdnotify_enabled());
	assert_int_equal(sdnotify_ready(), 0);
}

static void test_bad_names(void **state)
{
	(void)state;
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	errno = 0;
	assert_int_equal(sdnotify_ready(), -1);
	assert_int_equal(errno, EINVAL);
	/* A socket nobody listens on: an error, not a block. */
	setenv("NOTIFY_SOCKET", "/tmp/teardown-notify-nobody", 1);
	unlink("/tmp/teardown-notify-nobody");
	assert_int_equal(sdnotify_ready(), -1);
	unsetenv("NOTIFY_SOCKET");
}

/* A receiver that never reads: once its queue is full the send fails with EAGAIN at once
 * (the event loop must never block on systemd). */
static void test_full_receiver_never_blocks(void **state)
{
	char name[64];
	int fd, failed = 0;

	(void)state;
	snprintf(name, sizeof(name), "@teardown-notify-full-%d", (int)getpid());
	fd = receiver(name);
	for (int i = 0; i < 100000 && !failed; i++)
		if (sdnotify_sendf("STATUS=%d", i) < 0) {
			assert_int_equal(errno, EAGAIN);
			failed = 1;
		}
	assert_true(failed);
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_path_socket),
	    cmocka_unit_test(test_abstract_socket),
	    cmocka_unit_test(test_unset_does_nothing),
	    cmocka_unit_test(test_bad_names),
	    cmocka_unit_test(test_full_receiver_never_blocks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
