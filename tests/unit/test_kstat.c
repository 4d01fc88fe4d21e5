/* kstat: the parsers of /proc/net/netstat and /proc/net/sockstat on fabricated text, and
 * the live files of this kernel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "kstat.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_kstat_parse),
	    cmocka_unit_test(test_kstat_read),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
