/* client/fault.c: the initial-namespace check refuses what it must (same namespace, or
 * one it cannot tell) and allows another namespace; the nftables script names the server
 * and the set of the server's family; nft's counter output is read. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "client/fault.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Two ordinary files stand in for namespace files: what counts is their identity. */
static void test_netns_differs(void **state)
{
	char a[] = "/tmp/td-fault-a-XXXXXX", b[] = "/tmp/td-fault-b-XXXXXX", why[512];
	int fa = mkstemp(a), fb = mkstemp(b);
	const char *other[] = {b}, *same[] = {a}, *missing[] = {"/nonexistent/ns"},
		   *fallback[] = {"/nonexistent/ns", b}, *fallback_same[] = {"/nonexistent", a};

	(void)state;
	assert_true(fa >= 0 && fb >= 0);
	assert_int_equal(fault_netns_differs(a, other, 1, why, sizeof(why)), 0);
	assert_int_equal(fault_netns_differs(a, same, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "initial network namespace"));
	assert_non_null(strstr(why, "ip netns exec"));
	/* pid 1's file unreadable: the next reference decides; none readable: refused */
	assert_int_equal(fault_netns_differs(a, fallback, 2, why, sizeof(why)), 0);
	assert_int_equal(fault_netns_differs(a, fallback_same, 2, why, sizeof(why)), -1);
	assert_int_equal(fault_netns_differs(a, missing, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "cannot tell"));
	assert_int_equal(fault_netns_differs(a, NULL, 0, why, sizeof(why)), -1);
	assert_int_equal(fault_netns_differs("/nonexistent/self", other, 1, why, sizeof(why)), -1);
	close(fa);
	close(fb);
	unlink(a);
	unlink(b);
}

static void test_table_script_v4(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(7000)};
	char buf[2048];

	(void)state;
	inet_pton(AF_INET, "10.1.2.3", &sa.sin_addr);
	assert_true(fault_table_script(buf, sizeof(buf), "load_client_42", (struct sockaddr *)&sa) >
		    0);
	/* the table is replaced, not added to, when a killed client left one of this name */
	assert_non_null(strstr(buf, "add table inet load_client_42\n"
				    "delete table inet load_client_42\n"));
	assert_non_null(strstr(buf, "type ipv4_addr . inet_service"));
	assert_non_null(strstr(buf, "ip daddr 10.1.2.3 tcp dport 7000 ip saddr . tcp sport @dead "
				    "counter name to_server drop"));
	assert_non_null(strstr(buf, "ip saddr 10.1.2.3 tcp sport 7000 ip daddr . tcp dport @dead "
				    "counter name from_server drop"));
	assert_int_equal(fault_table_script(buf, 100, "load_client_42", (struct sockaddr *)&sa),
			 -1);
}

static void test_table_script_v6(void **state)
{
	struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_port = htons(80)};
	struct sockaddr_un_like {
		sa_family_t family;
	} other = {AF_UNIX};
	char buf[2048];

	(void)state;
	inet_pton(AF_INET6, "fd00::1", &sa.sin6_addr);
	assert_true(fault_table_script(buf, sizeof(buf), "t", (struct sockaddr *)&sa) > 0);
	assert_non_null(strstr(buf, "type ipv6_addr . inet_service"));
	assert_non_null(strstr(buf, "ip6 daddr fd00::1 tcp dport 80 ip6 saddr . tcp sport @dead"));
	assert_int_equal(fault_table_script(buf, sizeof(buf), "t", (struct sockaddr *)&other), -1);
}

static void test_parse_packets(void **state)
{
	uint64_t n = 0;

	(void)state;
	assert_int_equal(fault_parse_packets("table inet load_client_1 {\n\tcounter from_server {\n"
					     "\t\tpackets 1234 bytes 56789\n\t}\n}\n",
					     &n),
			 0);
	assert_true(n == 1234);
	assert_int_equal(fault_parse_packets("packets 0 bytes 0", &n), 0);
	assert_true(n == 0);
	assert_int_equal(fault_parse_packets("bytes 5", &n), -1);
	assert_int_equal(fault_parse_packets("packets x", &n), -1);
	assert_int_equal(fault_parse_packets("packets 12x", &n), -1);
}

/* The element of a connected socket is its local address and port. */
static void test_element(void **state)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	char buf[FAULT_ELEM_MAX], want[FAULT_ELEM_MAX];

	(void)state;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(l, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&sa, &len), 0);
	assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	len = sizeof(sa);
	assert_int_equal(getsockname(c, (struct sockaddr *)&sa, &len), 0);
	snprintf(want, sizeof(want), "127.0.0.1 . %d", ntohs(sa.sin_port));
	assert_int_equal(fault_element(c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
	assert_int_equal(fault_element(c, buf, 8), -1);
	assert_int_equal(fault_element(-1, buf, sizeof(buf)), -1);
	close(c);
	close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_netns_differs),   cmocka_unit_test(test_table_script_v4),
	    cmocka_unit_test(test_table_script_v6), cmocka_unit_test(test_parse_packets),
	    cmocka_unit_test(test_element),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
