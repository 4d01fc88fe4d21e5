/* kstat: the parsers of /proc/net/netstat and /proc/net/sockstat on fabricated text, and
 * the live files of this kernel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kstat.h"

#include <string.h>
#include <sys/stat.h>

static void test_kstat_parse(void **state)
{
	static const char netstat[] =
	    "TcpExt: SyncookiesSent TCPAbortOnClose ListenOverflows ListenDrops "
	    "TCPAbortOnData\n"
	    "TcpExt: 1 22 333 4444 55\n"
	    "IpExt: InNoRoutes\n"
	    "IpExt: 7\n";
	static const char sockstat[] = "sockets: used 18\n"
				       "TCP: inuse 5 orphan 1 tw 1699 alloc 14 mem 88\n"
				       "UDP: inuse 0 mem 0\n";
	struct kstat k = {0};

	(void)state;
	assert_int_equal(kstat_parse_netstat(netstat, &k), 0);
	assert_int_equal(k.tcpext[KSTAT_ABORT_ON_CLOSE], 22);
	assert_int_equal(k.tcpext[KSTAT_LISTEN_OVERFLOWS], 333);
	assert_int_equal(k.tcpext[KSTAT_LISTEN_DROPS], 4444);
	assert_int_equal(k.tcpext[KSTAT_ABORT_ON_DATA], 55);
	assert_false(k.tcpext_found & (1U << KSTAT_ABORT_ON_MEMORY));
	assert_true(k.tcpext_found & (1U << KSTAT_ABORT_ON_DATA));
	assert_int_equal(kstat_parse_sockstat(sockstat, &k), 0);
	assert_int_equal(k.sockstat[KSTAT_TCP_INUSE], 5);
	assert_int_equal(k.sockstat[KSTAT_TCP_TW], 1699);
	assert_int_equal(k.sockstat[KSTAT_TCP_MEM], 88);
	assert_int_equal(k.sockstat_found, (1U << KSTAT_NSOCKSTAT) - 1);
	assert_int_equal(kstat_parse_netstat("IpExt: a\nIpExt: 1\n", &k), -1);
	assert_int_equal(kstat_parse_netstat("TcpExt: a b\nTcpExt: 1\n", &k), -1);
	assert_int_equal(kstat_parse_netstat("TcpExt: a\nTcpExt: x\n", &k), -1);
	assert_int_equal(kstat_parse_sockstat("UDP: inuse 0\n", &k), -1);
	assert_string_equal(kstat_counter_name(KSTAT_TIME_WAIT_OVERFLOW), "TCPTimeWaitOverflow");
	assert_string_equal(kstat_counter_key(KSTAT_LISTEN_DROPS), "listen_drops");
}

static void test_kstat_names(void **state)
{
	(void)state;
	for (int i = 0; i < KSTAT_NCOUNTERS; i++)
		assert_int_equal(kstat_counter_parse(kstat_counter_name((enum kstat_counter)i)), i);
	for (int i = 0; i < KSTAT_NSOCKSTAT; i++)
		assert_int_equal(kstat_sockstat_parse(kstat_sockstat_name((enum kstat_sockstat)i)),
				 i);
	for (int i = 0; i < KSTAT_NLIMITS; i++)
		assert_int_equal(kstat_limit_parse(kstat_limit_name((enum kstat_limit)i)), i);
	assert_int_equal(kstat_counter_parse("TCPAbortOnClose"), KSTAT_ABORT_ON_CLOSE);
	assert_int_equal(kstat_counter_parse("tcpabortonclose"), -1); /* the kernel's case */
	assert_int_equal(kstat_counter_parse("TCPAbortOnLinger"), -1);
	assert_int_equal(kstat_sockstat_parse("orphans"), -1);
	assert_int_equal(kstat_limit_parse("tcp_mem"), -1);
}

/* Deltas of the counters found in both reads; sockstat as at the end. */
static void test_kstat_delta(void **state)
{
	struct kstat a = {0}, b = {0}, d;

	(void)state;
	a.tcpext_found = 1U << KSTAT_ABORT_ON_DATA | 1U << KSTAT_LISTEN_DROPS;
	a.tcpext[KSTAT_ABORT_ON_DATA] = 100;
	a.tcpext[KSTAT_LISTEN_DROPS] = 7;
	b.tcpext_found =
	    1U << KSTAT_ABORT_ON_DATA | 1U << KSTAT_LISTEN_DROPS | 1U << KSTAT_ABORT_ON_CLOSE;
	b.tcpext[KSTAT_ABORT_ON_DATA] = 150;
	b.tcpext[KSTAT_LISTEN_DROPS] = 3; /* went back: never in a namespace; counts 0 */
	b.tcpext[KSTAT_ABORT_ON_CLOSE] = 9;
	a.sockstat_found = 1U << KSTAT_TCP_TW;
	a.sockstat[KSTAT_TCP_TW] = 1000;
	b.sockstat_found = 1U << KSTAT_TCP_TW | 1U << KSTAT_TCP_ORPHAN;
	b.sockstat[KSTAT_TCP_TW] = 40;
	b.sockstat[KSTAT_TCP_ORPHAN] = 2;
	kstat_delta(&a, &b, &d);
	assert_int_equal(d.tcpext_found, 1U << KSTAT_ABORT_ON_DATA | 1U << KSTAT_LISTEN_DROPS);
	assert_int_equal(d.tcpext[KSTAT_ABORT_ON_DATA], 50);
	assert_int_equal(d.tcpext[KSTAT_LISTEN_DROPS], 0);
	assert_int_equal(d.tcpext[KSTAT_ABORT_ON_CLOSE], 0); /* not read at the start */
	assert_int_equal(d.sockstat_found, b.sockstat_found);
	assert_int_equal(d.sockstat[KSTAT_TCP_TW], 40);
	assert_int_equal(d.sockstat[KSTAT_TCP_ORPHAN], 2);
}

static void test_kstat_limits_parse(void **state)
{
	struct kstat_limits l = {0};

	(void)state;
	assert_int_equal(kstat_parse_max_orphans("131072\n", &l), 0);
	assert_int_equal(l.found, 1U << KSTAT_MAX_ORPHANS);
	assert_int_equal(l.v[KSTAT_MAX_ORPHANS], 131072);
	assert_int_equal(kstat_parse_tcp_mem("287898\t383867\t575796\n", &l), 0);
	assert_int_equal(l.found, (1U << KSTAT_NLIMITS) - 1);
	assert_int_equal(l.v[KSTAT_MEM_LOW], 287898);
	assert_int_equal(l.v[KSTAT_MEM_PRESSURE], 383867);
	assert_int_equal(l.v[KSTAT_MEM_HIGH], 575796);
	memset(&l, 0, sizeof(l));
	assert_int_equal(kstat_parse_tcp_mem("1 2\n", &l), -1);
	assert_int_equal(kstat_parse_tcp_mem("1 2 3 4\n", &l), -1);
	assert_int_equal(kstat_parse_max_orphans("", &l), -1);
	assert_int_equal(kstat_parse_max_orphans("-1\n", &l), -1);
	assert_int_equal(kstat_parse_max_orphans("12x\n", &l), -1);
	assert_int_equal(kstat_parse_max_orphans("99999999999999999999999\n", &l), -1);
	assert_int_equal(l.found, 0);
}

/* The live files parse on this kernel. */
static void test_kstat_read(void **state)
{
	struct kstat_files f;
	struct kstat k;

	(void)state;
	if (kstat_open(&f) < 0)
		skip();
	kstat_read(&f, &k);
	kstat_read(&f, &k); /* re-read through the same fds */
	kstat_close(&f);
	assert_true(k.tcpext_found & (1U << KSTAT_LISTEN_OVERFLOWS));
	assert_true(k.sockstat_found & (1U << KSTAT_TCP_INUSE));
}

/* The limits: all of them in the initial network namespace (whose inode number is fixed:
 * PROC_NET_INIT_INO), none in another. */
static void test_kstat_read_limits(void **state)
{
	struct kstat_limits l;
	struct stat self;

	(void)state;
	kstat_read_limits(&l);
	if (stat("/proc/self/ns/net", &self) < 0)
		skip();
	if (self.st_ino == 0xEFFFFFF9U)
		assert_int_equal(l.found, (1U << KSTAT_NLIMITS) - 1);
	else
		assert_int_equal(l.found, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kstat_parse), cmocka_unit_test(test_kstat_names),
	    cmocka_unit_test(test_kstat_delta), cmocka_unit_test(test_kstat_limits_parse),
	    cmocka_unit_test(test_kstat_read),	cmocka_unit_test(test_kstat_read_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
