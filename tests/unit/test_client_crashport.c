/* client/crashport.c: the workers' shares of the port range cover it exactly once whatever
 * each one's start; a worker's share is handed out once per source address, then
 * FAIL_CRASH_PORTS, and a port held by another socket is skipped. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/crashport.h"
#include "client/fault.h"
#include "client/result.h"

#include <arpa/inet.h>
#include <sched.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_shares_cover_range_once(void **state)
{
	static const int workers[] = {1, 2, 3, 7, 100, 150};
	const uint32_t lo = 40000, n = 100;

	(void)state;
	for (size_t i = 0; i < sizeof(workers) / sizeof(workers[0]); i++) {
		int nw = workers[i], seen[100] = {0};
		uint32_t total = 0;
		for (int w = 0; w < nw; w++) {
			uint32_t share = crashport_share(n, w, nw), start = share ? 7 % share : 0;
			total += share;
			for (uint32_t k = 0; k < share; k++) {
				uint16_t port = crashport_port(lo, n, w, nw, start, k);
				assert_true(port >= lo && port < lo + n);
				assert_int_equal((port - lo) % (uint32_t)nw, w);
				seen[port - lo]++;
			}
		}
		assert_int_equal(total, n);
		for (uint32_t p = 0; p < n; p++)
			assert_int_equal(seen[p], 1);
	}
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	return ntohs(a.sin_port);
}

/* A crash run from 127.0.0.1 with --duration (no one-pass check) and nworkers workers,
 * prepared; *lo and *hi: this namespace's ip_local_port_range. */
struct crash_run {
	struct client_opts o;
	struct plan plan;
	struct crashport_plan cp;
};

static void crash_opts(struct crash_run *r, int nworkers, unsigned *lo, unsigned *hi)
{
	struct client_opts *o = &r->o;
	struct sockaddr_in *src = (struct sockaddr_in *)&o->crash_src;

	memset(o, 0, sizeof(*o));
	src->sin_family = AF_INET;
	src->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	o->crash_srclen = sizeof(*src);
	o->addr.ss_family = AF_INET;
	o->duration_ms = 1000;
	o->procs = nworkers;
	mix_single(&o->mix, SCEN_CRASH);
	plan_init(&r->plan, o);
	assert_int_equal(crashport_prepare(o, &r->plan, &r->cp), FAULT_READY);
	*lo = r->cp.range_lo;
	*hi = r->cp.range_lo + r->cp.range_n - 1;
}

/* This namespace's ip_local_port_range. */
static uint32_t range_size(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
	unsigned lo, hi;

	assert_non_null(f);
	assert_int_equal(fscanf(f, "%u %u", &lo, &hi), 2);
	fclose(f);
	return hi - lo + 1;
}

/* A tiny share (many workers): each port once, then FAIL_CRASH_PORTS. */
static void test_bind_once_then_used_up(void **state)
{
	static struct crash_run run;
	struct crashports *p;
	int fds[4], nworkers = (int)(range_size() / 2); /* worker 0's share: 2 or 3 ports */
	unsigned lo = 0, hi = 0;

	(void)state;
	crash_opts(&run, nworkers, &lo, &hi);
	p = crashport_new(&run.o, &run.plan, &run.cp, 0);
	assert_non_null(p);
	for (int i = 0; i < 4; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
	}
	if (crashport_bind(p, fds[0], 0) != 0 || crashport_bind(p, fds[1], 1) != 0) {
		/* another program holds a port of the share on this host */
		crashport_free(p);
		for (int i = 0; i < 4; i++)
			close(fds[i]);
		skip();
	}
	assert_int_not_equal(bound_port(fds[0]), bound_port(fds[1]));
	if (crashport_share(hi - lo + 1, 0, nworkers) == 3)
		assert_int_equal(crashport_bind(p, fds[2], 2), 0);
	assert_int_equal(crashport_bind(p, fds[3], 3), FAIL_CRASH_PORTS);
	crashport_free(p);
	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* Every port of the share but one is held by another socket: that one is taken. */
static void test_bind_skips_port_in_use(void **state)
{
	static struct crash_run run;
	struct crashports *p, *q;
	int a, b, nworkers = (int)range_size(); /* worker 0's share: one port */
	unsigned lo = 0, hi = 0;

	(void)state;
	crash_opts(&run, nworkers, &lo, &hi);
	p = crashport_new(&run.o, &run.plan, &run.cp, 0);
	q = crashport_new(&run.o, &run.plan, &run.cp, 0);
	a = socket(AF_INET, SOCK_STREAM, 0);
	b = socket(AF_INET, SOCK_STREAM, 0);
	if (crashport_bind(p, a, 0) != 0) { /* another program holds it on this host */
		crashport_free(p);
		crashport_free(q);
		close(a);
		close(b);
		skip();
	}
	assert_int_equal(bound_port(a), lo);
	assert_int_equal(crashport_bind(q, b, 0), FAIL_CRASH_PORTS); /* skipped, used up */
	crashport_free(p);
	crashport_free(q);
	close(a);
	close(b);
}

int main(void)
{
	/* As root, a network namespace of its own: the binding tests need particular ports
	 * of 127.0.0.1 free, and other tests' TIME_WAIT sockets on the host hold some (they
	 * skip then). The namespace goes with the process. */
	if (geteuid() == 0 && unshare(CLONE_NEWNET) < 0)
		perror("unshare(CLONE_NEWNET)");
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_shares_cover_range_once),
	    cmocka_unit_test(test_bind_once_then_used_up),
	    cmocka_unit_test(test_bind_skips_port_in_use),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
