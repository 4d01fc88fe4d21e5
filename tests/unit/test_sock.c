/* Unit tests of common/sock.c: every option is read back with getsockopt(). */
#include "sock.h"
#include "tests/no_dns.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static int tcp_socket(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	return fd;
}

static int get_int(int fd, int level, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);

	assert_int_equal(getsockopt(fd, level, opt, &v, &len), 0);
	return v;
}

static void test_nonblocking(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(sock_set_nonblocking(fd), 0);
	assert_true(fcntl(fd, F_GETFL) & O_NONBLOCK);
	assert_int_equal(sock_set_nonblocking(fd), 0); /* idempotent */
	close(fd);
}

static void test_reuseaddr_reuseport(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEPORT), 0);
	assert_int_equal(sock_is_reuseport(fd), 0);
	assert_int_equal(sock_set_reuseaddr(fd), 0);
	assert_int_equal(sock_set_reuseport(fd), 0);
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEADDR), 1);
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_REUSEPORT), 1);
	assert_int_equal(sock_is_reuseport(fd), 1);
	close(fd);
	assert_int_equal(sock_is_reuseport(fd), 0); /* not a socket any more */
}

static void test_keepalive(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(sock_set_keepalive(fd, 7, 3, 4), 0);
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 1);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE), 7);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL), 3);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_KEEPCNT), 4);
	assert_int_equal(sock_clear_keepalive(fd), 0);
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	close(fd);
}

static void test_keepalive_rejects_zero(void **state)
{
	int fd = tcp_socket();

	(void)state;
	/* The kernel refuses TCP_KEEPIDLE 0 (range 1..32767): the error reaches the caller. */
	assert_int_equal(sock_set_keepalive(fd, 0, 1, 1), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(get_int(fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	close(fd);
}

static void test_user_timeout(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(sock_set_user_timeout(fd, 4500), 0);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), 4500);
	close(fd);
}

static void test_linger_reset(void **state)
{
	int fd = tcp_socket();
	struct linger lg = {-1, -1};
	socklen_t len = sizeof(lg);

	(void)state;
	assert_int_equal(sock_set_linger_reset(fd), 0);
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &len), 0);
	assert_int_equal(lg.l_onoff, 1);
	assert_int_equal(lg.l_linger, 0);
	close(fd);
}

static void test_nodelay(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 0);
	assert_int_equal(sock_set_nodelay(fd), 0);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_NODELAY), 1);
	close(fd);
}

static void test_quickack(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(sock_set_quickack(fd), 0);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_QUICKACK), 1);
	close(fd);
}

/* TCP_REPAIR needs CAP_NET_ADMIN: without it the call fails with EPERM and the case is
 * skipped. */
static void test_repair(void **state)
{
	int fd = tcp_socket();

	(void)state;
	if (sock_set_repair(fd, 1) < 0) {
		assert_int_equal(errno, EPERM);
		close(fd);
		skip();
	}
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_REPAIR), 1);
	assert_int_equal(sock_set_repair(fd, 0), 0);
	assert_int_equal(get_int(fd, IPPROTO_TCP, TCP_REPAIR), 0);
	close(fd);
}

static void test_bind_no_port(void **state)
{
	int fd = tcp_socket();

	(void)state;
	assert_int_equal(sock_set_bind_no_port(fd), 0);
	assert_int_equal(get_int(fd, IPPROTO_IP, 24 /* IP_BIND_ADDRESS_NO_PORT */), 1);
	close(fd);
}

static void test_bad_fd(void **state)
{
	(void)state;
	assert_int_equal(sock_set_nodelay(-1), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(sock_set_keepalive(-1, 1, 1, 1), -1);
	assert_int_equal(sock_set_linger_reset(-1), -1);
}

static void test_parse_hostport(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], buf[64];

	(void)state;
	assert_int_equal(sock_parse_hostport("127.0.0.1:7000", &ss, &len, err, sizeof(err)), 0);
	assert_string_equal(sock_addr_str((struct sockaddr *)&ss, buf, sizeof(buf)),
			    "127.0.0.1:7000");
	assert_int_equal(sock_parse_hostport("[::1]:0", &ss, &len, err, sizeof(err)), 0);
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_string_equal(sock_addr_str((struct sockaddr *)&ss, buf, sizeof(buf)), "[::1]:0");
	assert_int_equal(sock_parse_hostport("127.0.0.1", &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(sock_parse_hostport("127.0.0.1:65536", &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(sock_parse_hostport("127.0.0.1:-1", &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(sock_parse_hostport("127.0.0.1:80x", &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(sock_parse_hostport("[::1:80", &ss, &len, err, sizeof(err)), -1);
	assert_int_equal(
	    sock_parse_hostport("no.such.host.invalid:80", &ss, &len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot resolve"));
}

/* Without SO_REUSEPORT a second listener on the same port fails with EADDRINUSE. */
static void test_listen_port_in_use(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], addr[64];
	int a, b, port;

	(void)state;
	assert_int_equal(sock_parse_hostport("127.0.0.1:0", &ss, &len, err, sizeof(err)), 0);
	a = sock_listen((struct sockaddr *)&ss, len, 16, 0);
	assert_true(a >= 0);
	port = sock_local_port(a);
	assert_true(port > 0);
	assert_true(fcntl(a, F_GETFL) & O_NONBLOCK);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	assert_int_equal(sock_parse_hostport(addr, &ss, &len, err, sizeof(err)), 0);
	b = sock_listen((struct sockaddr *)&ss, len, 16, 0);
	assert_int_equal(b, -1);
	assert_int_equal(errno, EADDRINUSE);
	close(a);
}

/* SIOCOUTQ and SO_SNDBUF: empty on a fresh connection; with a peer that does not read,
 * what could not be delivered stays queued, within the send buffer. */
static void test_send_queue(void **state)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128], buf[65536];
	int l, c, a, queued = -1, size = -1, small = 4096;

	(void)state;
	memset(buf, 'q', sizeof(buf));
	assert_int_equal(sock_parse_hostport("127.0.0.1:0", &ss, &len, err, sizeof(err)), 0);
	l = sock_listen((struct sockaddr *)&ss, len, 4, 0);
	assert_true(l >= 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(l, (struct sockaddr *)&ss, &len), 0);
	c = tcp_socket();
	assert_int_equal(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&ss, len), 0);
	a = accept(l, NULL, NULL);
	assert_true(a >= 0);
	assert_int_equal(sock_send_queue(a, &queued, &size), 0);
	assert_int_equal(queued, 0);
	assert_int_equal(size, get_int(a, SOL_SOCKET, SO_SNDBUF));
	assert_int_equal(sock_set_nonblocking(a), 0);
	while (send(a, buf, sizeof(buf), MSG_NOSIGNAL) > 0)
		;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(sock_send_queue(a, &queued, &size), 0);
	assert_true(queued > 0);
	assert_true(queued <= size);
	assert_int_equal(sock_send_queue(-1, &queued, &size), -1);
	close(a);
	close(c);
	close(l);
}

/* The errno classes the accept loops and the echo path act on. */
static void test_errno_classes(void **state)
{
	(void)state;
	assert_true(sock_errno_transient(EAGAIN) && sock_errno_transient(EWOULDBLOCK) &&
		    sock_errno_transient(EINTR));
	assert_false(sock_errno_transient(ECONNRESET) || sock_errno_transient(EPIPE));
	assert_true(sock_accept_retry(EINTR) && sock_accept_retry(ECONNABORTED) &&
		    sock_accept_retry(EPROTO));
	assert_false(sock_accept_retry(EMFILE) || sock_accept_retry(EAGAIN));
	assert_true(sock_accept_exhausted(EMFILE) && sock_accept_exhausted(ENFILE) &&
		    sock_accept_exhausted(ENOBUFS) && sock_accept_exhausted(ENOMEM));
	assert_false(sock_accept_exhausted(ECONNABORTED) || sock_accept_exhausted(EAGAIN));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_nonblocking),
	    cmocka_unit_test(test_reuseaddr_reuseport),
	    cmocka_unit_test(test_keepalive),
	    cmocka_unit_test(test_keepalive_rejects_zero),
	    cmocka_unit_test(test_user_timeout),
	    cmocka_unit_test(test_linger_reset),
	    cmocka_unit_test(test_nodelay),
	    cmocka_unit_test(test_quickack),
	    cmocka_unit_test(test_repair),
	    cmocka_unit_test(test_bind_no_port),
	    cmocka_unit_test(test_bad_fd),
	    cmocka_unit_test(test_parse_hostport),
	    cmocka_unit_test(test_listen_port_in_use),
	    cmocka_unit_test(test_errno_classes),
	    cmocka_unit_test(test_send_queue),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
