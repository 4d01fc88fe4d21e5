/* census_each: per-socket records of a port's census: the inode is the fd's st_ino, the
 * cookie is stable across censuses, the state mask filters, and the counts it fills equal
 * census_port's. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "census.h"
#include "clock.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAXREC 64

struct recs {
	struct census_sock_info r[MAXREC];
	int n;
};

static void collect(const struct census_sock_info *s, void *arg)
{
	struct recs *rs = arg;

	if (rs->n < MAXREC)
		rs->r[rs->n++] = *s;
}

static const struct census_sock_info *find_inode(const struct recs *rs, int fd)
{
	struct stat st;

	assert_int_equal(fstat(fd, &st), 0);
	for (int i = 0; i < rs->n; i++)
		if (rs->r[i].inode == (uint32_t)st.st_ino)
			return &rs->r[i];
	return NULL;
}

static int loopback_listener(int *port)
{
	struct sockaddr_in in = {.sin_family = AF_INET};
	socklen_t len = sizeof(in);
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
	*port = ntohs(in.sin_port);
	return fd;
}

static int connect_to(int port)
{
	struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&in, sizeof(in)), 0);
	return fd;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {0, ms * 1000000};

	nanosleep(&ts, NULL);
}

static void test_records(void **state)
{
	struct census_sock *cs = census_open();
	struct census_counts counts, ref;
	struct recs rs = {.n = 0};
	const struct census_sock_info *l, *a;
	int port, lfd = loopback_listener(&port), cfd = connect_to(port);
	int afd = accept(lfd, NULL, NULL);

	(void)state;
	assert_non_null(cs);
	assert_true(afd >= 0);
	assert_int_equal(census_each(cs, port, CENSUS_LOCAL, 0, &counts, collect, &rs), 0);
	assert_int_equal(census_port(cs, port, CENSUS_LOCAL, &ref), 0);
	assert_int_equal(rs.n, 2);
	assert_int_equal(counts.total, ref.total);
	assert_int_equal(counts.state[CENSUS_LISTEN], 1);
	assert_int_equal(counts.state[CENSUS_ESTABLISHED], 1);
	l = find_inode(&rs, lfd);
	a = find_inode(&rs, afd);
	assert_non_null(l);
	assert_non_null(a);
	assert_int_equal(l->state, CENSUS_LISTEN);
	assert_int_equal(a->state, CENSUS_ESTABLISHED);
	assert_int_equal(a->sport, port);
	assert_int_equal(a->src[0], htonl(INADDR_LOOPBACK));
	assert_true(a->cookie != l->cookie);
	close(afd);
	close(cfd);
	close(lfd);
	census_close(cs);
}

/* The peer's FIN puts the accepted socket in CLOSE_WAIT; a CLOSE_WAIT-only census finds
 * it, with the same cookie as before, and nothing else. */
static void test_mask_and_cookie(void **state)
{
	struct census_sock *cs = census_open();
	struct recs before = {.n = 0}, after = {.n = 0};
	const struct census_sock_info *a;
	uint64_t cookie;
	int port, lfd = loopback_listener(&port), cfd = connect_to(port);
	int afd = accept(lfd, NULL, NULL);

	(void)state;
	assert_non_null(cs);
	assert_int_equal(census_each(cs, port, CENSUS_LOCAL, 0, NULL, collect, &before), 0);
	a = find_inode(&before, afd);
	assert_non_null(a);
	cookie = a->cookie;
	close(cfd);
	for (int i = 0; i < 500 && after.n == 0; i++) {
		assert_int_equal(census_each(cs, port, CENSUS_LOCAL,
					     CENSUS_STATE_BIT(CENSUS_CLOSE_WAIT), NULL, collect,
					     &after),
				 0);
		if (after.n == 0)
			sleep_ms(2);
	}
	assert_int_equal(after.n, 1);
	assert_int_equal(after.r[0].state, CENSUS_CLOSE_WAIT);
	assert_true(after.r[0].cookie == cookie);
	close(afd);
	close(lfd);
	census_close(cs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_mask_and_cookie),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
