/* Unit tests of common/tcpinfo.c: tcpi_bytes_acked counts exactly the data the peer has
 * acknowledged (what the server's write deadline calls progress), and a socket that is
 * not TCP is an error, not a zero. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "sock.h"
#include "tcpinfo.h"

/* A connected loopback pair: *cli connected to *srv (accepted). */
static void tcp_pair(int *cli, int *srv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], addr[64];
	int l;

	assert_int_equal(sock_parse_hostport("127.0.0.1:0", &ss, &len, err, sizeof(err)), 0);
	l = sock_listen((struct sockaddr *)&ss, len, 4, 0);
	assert_true(l >= 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sock_local_port(l));
	assert_int_equal(sock_parse_hostport(addr, &ss, &len, err, sizeof(err)), 0);
	*cli = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*cli >= 0);
	assert_int_equal(connect(*cli, (struct sockaddr *)&ss, len), 0);
	do {
		*srv = accept(l, NULL, NULL); /* the listener is nonblocking */
	} while (*srv < 0 && errno == EAGAIN);
	assert_true(*srv >= 0);
	close(l);
}

static void test_bytes_acked_counts_data(void **state)
{
	char buf[4000];
	uint64_t a0, a1 = 0;
	uint32_t mss = 0;
	int cli, srv;
	int64_t deadline;

	(void)state;
	tcp_pair(&cli, &srv);
	memset(buf, 'x', sizeof(buf));
	assert_int_equal(tcpinfo_bytes_acked(srv, &a0, &mss), 0);
	assert_true(mss >= 536); /* a connected socket has a send MSS */
	assert_int_equal(send(srv, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	/* The peer's kernel acknowledges what it queues, read or not: wait for the ACK. */
	deadline = clock_mono_ms() + 2000;
	do {
		assert_int_equal(tcpinfo_bytes_acked(srv, &a1, &mss), 0);
		if (a1 - a0 == sizeof(buf))
			break;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	} while (clock_mono_ms() < deadline);
	assert_int_equal(a1 - a0, sizeof(buf));
	close(cli);
	close(srv);
}

static void test_not_tcp_is_an_error(void **state)
{
	uint64_t acked = 42;
	uint32_t mss = 7;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_int_equal(tcpinfo_bytes_acked(sv[0], &acked, &mss), -1);
	assert_int_equal(acked, 42); /* untouched */
	assert_int_equal(mss, 7);
	close(sv[0]);
	close(sv[1]);
	assert_int_equal(tcpinfo_bytes_acked(-1, &acked, &mss), -1);
	assert_int_equal(errno, EBADF);
}

/* The accept queue's length as connections complete and are accepted; a connected socket
 * is not a listener. */
static void test_accept_queue_length(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], addr[64];
	uint32_t q = 99;
	int l, cli[3], a;

	(void)state;
	assert_int_equal(sock_parse_hostport("127.0.0.1:0", &ss, &len, err, sizeof(err)), 0);
	l = sock_listen((struct sockaddr *)&ss, len, 8, 0);
	assert_true(l >= 0);
	assert_int_equal(tcpinfo_accept_queue(l, &q), 0);
	assert_int_equal(q, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", sock_local_port(l));
	assert_int_equal(sock_parse_hostport(addr, &ss, &len, err, sizeof(err)), 0);
	/* On loopback the handshake completes inside connect(): each is queued on return. */
	for (int i = 0; i < 3; i++) {
		cli[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(cli[i] >= 0);
		assert_int_equal(connect(cli[i], (struct sockaddr *)&ss, len), 0);
	}
	assert_int_equal(tcpinfo_accept_queue(l, &q), 0);
	assert_int_equal(q, 3);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(tcpinfo_accept_queue(l, &q), 0);
	assert_int_equal(q, 2);
	q = 42;
	assert_int_equal(tcpinfo_accept_queue(a, &q), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(q, 42); /* untouched */
	close(a);
	for (int i = 0; i < 3; i++)
		close(cli[i]);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bytes_acked_counts_data),
	    cmocka_unit_test(test_not_tcp_is_an_error),
	    cmocka_unit_test(test_accept_queue_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
