/* census: counts per state for fabricated loopback sockets equal `ss`'s, both sides of a
 * port are told apart, IPv4-mapped sockets count once, and the census works at the fd
 * limit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "census.h"
#include "clock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFDS 512

struct fds {
	int fd[MAXFDS];
	int n;
};

static void keep(struct fds *f, int fd)
{
	assert_true(fd >= 0);
	assert_true(f->n < MAXFDS);
	f->fd[f->n++] = fd;
}

static void close_all(struct fds *f)
{
	for (int i = 0; i < f->n; i++)
		close(f->fd[i]);
	f->n = 0;
}

static int listener(int family, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		in6->sin6_addr = in6addr_any; /* dual stack: IPv4 clients become v4-mapped */
		len = sizeof(*in6);
	}
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, len), 0);
	assert_int_equal(listen(fd, 1024), 0);
	len = sizeof(ss);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	*port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					: ((struct sockaddr_in6 *)&ss)->sin6_port);
	return fd;
}

/* A connected pair on loopback: *client and the accepted *server. */
static void pair(int lfd, int port, int *client, int *server)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(*client >= 0);
	assert_int_equal(connect(*client, (struct sockaddr *)&in, sizeof(in)), 0);
	*server = accept(lfd, NULL, NULL);
	assert_true(*server >= 0);
}

/* Lines of `ss -tanH state STATE '( Xport = :PORT )'`. */
static long ss_count(const char *state, const char *dir, int port)
{
	char cmd[256], line[512];
	long n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ss -tanH state %s '( %s = :%d )' 2>/dev/null", state, dir,
		 port);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (fgets(line, sizeof(line), p) != NULL)
		n++;
	assert_int_equal(pclose(p), 0);
	return n;
}

/* Polls the census until `state` has `want` sockets (2 s deadline); returns the count. */
static uint64_t wait_state(struct census_sock *cs, int port, enum census_side side, int state,
			   uint64_t want)
{
	struct census_counts c;
	int64_t deadline = clock_mono_ms() + 2000;

	for (;;) {
		assert_int_equal(census_port(cs, port, side, &c), 0);
		if (c.state[state] == want || clock_mono_ms() > deadline)
			return c.state[state];
		usleep(1000);
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(census_state_name(CENSUS_CLOSE_WAIT), "CLOSE_WAIT");
	assert_string_equal(census_state_key(CENSUS_FIN_WAIT2), "fin_wait2");
	assert_string_equal(census_state_name(99), "?");
	assert_int_equal(census_state_parse("close_wait"), CENSUS_CLOSE_WAIT);
	assert_int_equal(census_state_parse("TIME_WAIT"), CENSUS_TIME_WAIT);
	assert_int_equal(census_state_parse("listen"), CENSUS_LISTEN);
	assert_int_equal(census_state_parse("nonsense"), -1);
	assert_string_equal(census_timer_name(CENSUS_TIMER_TIME_WAIT), "time_wait");
}

static void test_bad_port(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts c;

	(void)state;
	assert_non_null(cs);
	errno = 0;
	assert_int_equal(census_port(cs, 70000, CENSUS_LOCAL, &c), -1);
	assert_int_equal(errno, EINVAL);
	census_close(cs);
}

/* On port P: 3 ESTABLISHED, 2 CLOSE_WAIT, 4 FIN_WAIT_2, 5 TIME_WAIT and 1 LISTEN on the
 * server side (local port P); the mirror states on the client side (remote port P). */
static void fabricate(struct fds *f, int *port)
{
	int lfd = listener(AF_INET, port), c, s;

	keep(f, lfd);
	for (int i = 0; i < 3; i++) {
		pair(lfd, *port, &c, &s);
		keep(f, c);
		keep(f, s);
	}
	for (int i = 0; i < 2; i++) { /* client FIN, server never closes: CLOSE_WAIT */
		pair(lfd, *port, &c, &s);
		assert_int_equal(shutdown(c, SHUT_WR), 0);
		keep(f, c);
		keep(f, s);
	}
	for (int i = 0; i < 4; i++) { /* server FIN, client never closes: FIN_WAIT_2 */
		pair(lfd, *port, &c, &s);
		assert_int_equal(shutdown(s, SHUT_WR), 0);
		keep(f, c);
		keep(f, s);
	}
	for (int i = 0; i < 5; i++) { /* server closes first, then the client: TIME_WAIT */
		pair(lfd, *port, &c, &s);
		assert_int_equal(close(s), 0);
		keep(f, c);
	}
}

static void test_matches_ss(void **state)
{
	static const struct {
		int state;
		const char *ss_name;
		uint64_t local, remote;
	} want[] = {
	    {CENSUS_ESTABLISHED, "established", 3, 3}, {CENSUS_CLOSE_WAIT, "close-wait", 2, 4},
	    {CENSUS_FIN_WAIT2, "fin-wait-2", 4, 2},    {CENSUS_TIME_WAIT, "time-wait", 5, 0},
	    {CENSUS_LISTEN, "listening", 1, 0},
	};
	struct census_sock *cs = census_open();
	struct census_counts local, remote;
	struct fds f = {.n = 0};
	int port;

	(void)state;
	assert_non_null(cs);
	fabricate(&f, &port);
	/* The clients of the TIME_WAIT pairs close now; their server sides (orphaned in
	 * FIN_WAIT_2) get the FIN and move to TIME_WAIT. */
	for (int i = f.n - 5; i < f.n; i++)
		close(f.fd[i]);
	f.n -= 5;
	/* A FIN's ACK may be delayed (delayed ACK, up to 40 ms): wait until every state
	 * has settled, then compare both tools on the same, now stable, sockets. */
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		wait_state(cs, port, CENSUS_LOCAL, want[i].state, want[i].local);
		wait_state(cs, port, CENSUS_REMOTE, want[i].state, want[i].remote);
	}
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &local), 0);
	assert_int_equal(census_port(cs, port, CENSUS_REMOTE, &remote), 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		int st = want[i].state;
		print_message(
		    "# %-12s local %lu (ss %ld)  remote %lu (ss %ld)\n", census_state_name(st),
		    (unsigned long)local.state[st], ss_count(want[i].ss_name, "sport", port),
		    (unsigned long)remote.state[st], ss_count(want[i].ss_name, "dport", port));
		assert_int_equal(local.state[st], want[i].local);
		assert_int_equal(remote.state[st], want[i].remote);
		assert_int_equal(local.state[st], ss_count(want[i].ss_name, "sport", port));
		assert_int_equal(remote.state[st], ss_count(want[i].ss_name, "dport", port));
	}
	assert_int_equal(local.total, 3 + 2 + 4 + 5 + 1);
	assert_int_equal(remote.total, 3 + 4 + 2);
	assert_true(census_listening(&local));
	assert_false(census_listening(&remote));
	/* Every TIME_WAIT socket has its TIME_WAIT timer, due within 60 s. */
	assert_int_equal(local.timer[CENSUS_TIME_WAIT][CENSUS_TIMER_TIME_WAIT].count, 5);
	assert_true(local.timer[CENSUS_TIME_WAIT][CENSUS_TIMER_TIME_WAIT].max_expiry_ms <= 60000);
	close_all(&f);
	census_close(cs);
}

/* 100 clients of a local listener: the server side has 100 ESTABLISHED sockets, not the
 * 200 a census of "every socket that mentions the port" would give. */
static void test_hundred_connections(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts local, remote;
	struct fds f = {.n = 0};
	int port, lfd, c, s;

	(void)state;
	assert_non_null(cs);
	lfd = listener(AF_INET, &port);
	keep(&f, lfd);
	for (int i = 0; i < 100; i++) {
		pair(lfd, port, &c, &s);
		keep(&f, c);
		keep(&f, s);
	}
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &local), 0);
	assert_int_equal(census_port(cs, port, CENSUS_REMOTE, &remote), 0);
	print_message("# 100 connections: local ESTABLISHED %lu, remote ESTABLISHED %lu, %ld us\n",
		      (unsigned long)local.state[CENSUS_ESTABLISHED],
		      (unsigned long)remote.state[CENSUS_ESTABLISHED], (long)local.elapsed_us);
	assert_int_equal(local.state[CENSUS_ESTABLISHED], 100);
	assert_int_equal(local.state[CENSUS_LISTEN], 1);
	assert_int_equal(local.total, 101);
	assert_int_equal(remote.state[CENSUS_ESTABLISHED], 100);
	assert_int_equal(remote.total, 100);
	assert_int_equal(local.accept_queue, 0);
	assert_int_equal(local.accept_backlog, 1024);
	close_all(&f);
	census_close(cs);
}

/* Half of the client ports, about (connect() prefers even ports: bit 1, not bit 0). */
static int even_sport(const struct census_sock_info *s, void *arg)
{
	(*(int *)arg)++;
	return (s->sport >> 1) % 2 == 0;
}

/* census_port_both: one walk gives what the two one-sided censuses give, each side through
 * its own keep function, with the one-walk request and with one request per family; the
 * sockets of another port are in neither. */
static void test_both_sides_in_one_walk(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts local, remote, l1, r1;
	struct fds f = {.n = 0};
	int port, other, lfd, lfd2, c, s, calls = 0, even = 0;

	(void)state;
	assert_non_null(cs);
	lfd = listener(AF_INET, &port);
	lfd2 = listener(AF_INET, &other);
	keep(&f, lfd);
	keep(&f, lfd2);
	for (int i = 0; i < 60; i++) {
		pair(i < 50 ? lfd : lfd2, i < 50 ? port : other, &c, &s);
		keep(&f, c);
		keep(&f, s);
	}
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &l1), 0);
	assert_int_equal(census_port_keep(cs, port, CENSUS_REMOTE, even_sport, &even, &r1), 0);
	for (int per_family = 0; per_family < 2; per_family++) {
		census_set_per_family(cs, per_family);
		calls = 0;
		assert_int_equal(
		    census_port_both(cs, port, NULL, even_sport, &calls, &local, &remote), 0);
		print_message("# both sides in one walk (per family %d): local %lu, remote %lu of "
			      "which %lu kept, %ld us\n",
			      per_family, (unsigned long)local.total, (unsigned long)calls,
			      (unsigned long)remote.total, (long)local.elapsed_us);
		assert_int_equal(local.total, 51); /* 50 accepted and the listener */
		assert_int_equal(local.state[CENSUS_ESTABLISHED], 50);
		assert_int_equal(local.state[CENSUS_LISTEN], 1);
		assert_int_equal(calls, 50); /* keep_remote sees the remote side only */
		assert_memory_equal(local.state, l1.state, sizeof(l1.state));
		assert_memory_equal(remote.state, r1.state, sizeof(r1.state));
		assert_int_equal(remote.total, r1.total);
		assert_true(remote.total > 0 && remote.total < 50);
		assert_int_equal(local.elapsed_us, remote.elapsed_us);
	}
	close_all(&f);
	census_close(cs);
}

/* A dual-stack listener: IPv4 clients are AF_INET6 sockets (v4-mapped) on the server side
 * and AF_INET on the client side; each is counted once. */
static void test_ipv6_and_mapped(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts local;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct fds f = {.n = 0};
	int port, lfd, c, s;

	(void)state;
	assert_non_null(cs);
	lfd = listener(AF_INET6, &port);
	keep(&f, lfd);
	pair(lfd, port, &c, &s); /* IPv4 client: v4-mapped on the server side */
	keep(&f, c);
	keep(&f, s);
	in6.sin6_port = htons((uint16_t)port);
	in6.sin6_addr = in6addr_loopback;
	c = socket(AF_INET6, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&in6, sizeof(in6)), 0);
	keep(&f, c);
	keep(&f, accept(lfd, NULL, NULL));
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &local), 0);
	assert_int_equal(local.state[CENSUS_ESTABLISHED], 2);
	assert_int_equal(local.state[CENSUS_LISTEN], 1);
	assert_int_equal(local.state[CENSUS_ESTABLISHED], ss_count("established", "sport", port));
	close_all(&f);
	census_close(cs);
}

/* Both request forms (one walk for both families, or one v2 request per family) count
 * the same sockets: IPv4, IPv6 and v4-mapped. */
static void test_request_forms_agree(void **state)
{
	struct census_sock *one = census_open(), *two = census_open();
	struct census_counts a, b;
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
	struct fds f = {.n = 0};
	int port4, port6, lfd4, lfd6, c, s;

	(void)state;
	assert_non_null(one);
	assert_non_null(two);
	census_set_per_family(two, 1);
	lfd6 = listener(AF_INET6, &port6);
	keep(&f, lfd6);
	pair(lfd6, port6, &c, &s);
	keep(&f, c);
	keep(&f, s);
	in6.sin6_port = htons((uint16_t)port6);
	in6.sin6_addr = in6addr_loopback;
	c = socket(AF_INET6, SOCK_STREAM, 0);
	assert_int_equal(connect(c, (struct sockaddr *)&in6, sizeof(in6)), 0);
	keep(&f, c);
	keep(&f, accept(lfd6, NULL, NULL));
	lfd4 = listener(AF_INET, &port4);
	keep(&f, lfd4);
	for (int side = CENSUS_LOCAL; side <= CENSUS_REMOTE; side++) {
		assert_int_equal(census_port(one, port6, (enum census_side)side, &a), 0);
		assert_int_equal(census_port(two, port6, (enum census_side)side, &b), 0);
		assert_int_equal(a.total, side == CENSUS_LOCAL ? 3 : 2);
		assert_memory_equal(a.state, b.state, sizeof(a.state));
	}
	assert_int_equal(census_port(one, port4, CENSUS_LOCAL, &a), 0);
	assert_int_equal(census_port(two, port4, CENSUS_LOCAL, &b), 0);
	assert_int_equal(a.total, 1);
	assert_memory_equal(a.state, b.state, sizeof(a.state));
	close_all(&f);
	census_close(one);
	census_close(two);
}

/* The census needs no new fd: with every fd of the process in use it still counts. */
static void test_at_fd_limit(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts local;
	struct rlimit old, low;
	struct fds f = {.n = 0};
	int port, fd;

	(void)state;
	assert_non_null(cs);
	keep(&f, listener(AF_INET, &port));
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	low = old;
	low.rlim_cur = 64;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while ((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0)
		keep(&f, fd);
	assert_int_equal(errno, EMFILE);
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &local), 0);
	assert_int_equal(local.state[CENSUS_LISTEN], 1);
	close_all(&f);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	census_close(cs);
}

static void test_add(void **state)
{
	struct census_counts a, b;

	(void)state;
	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	a.total = 2;
	a.state[CENSUS_ESTABLISHED] = 2;
	a.timer[CENSUS_ESTABLISHED][CENSUS_TIMER_KEEPALIVE] =
	    (struct census_timer_sum){.count = 2, .max_expiry_ms = 500, .max_retrans = 1};
	b.total = 1;
	b.state[CENSUS_ESTABLISHED] = 1;
	b.timer[CENSUS_ESTABLISHED][CENSUS_TIMER_KEEPALIVE] =
	    (struct census_timer_sum){.count = 1, .max_expiry_ms = 900, .max_retrans = 0};
	census_add(&a, &b);
	assert_int_equal(a.total, 3);
	assert_int_equal(a.state[CENSUS_ESTABLISHED], 3);
	assert_int_equal(a.timer[CENSUS_ESTABLISHED][CENSUS_TIMER_KEEPALIVE].count, 3);
	assert_int_equal(a.timer[CENSUS_ESTABLISHED][CENSUS_TIMER_KEEPALIVE].max_expiry_ms, 900);
	assert_int_equal(a.timer[CENSUS_ESTABLISHED][CENSUS_TIMER_KEEPALIVE].max_retrans, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names),
	    cmocka_unit_test(test_bad_port),
	    cmocka_unit_test(test_matches_ss),
	    cmocka_unit_test(test_hundred_connections),
	    cmocka_unit_test(test_ipv6_and_mapped),
	    cmocka_unit_test(test_request_forms_agree),
	    cmocka_unit_test(test_at_fd_limit),
	    cmocka_unit_test(test_add),
	    cmocka_unit_test(test_both_sides_in_one_walk),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
