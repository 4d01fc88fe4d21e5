/* httpreq: the request head of the metrics endpoint. Whole heads (methods, paths, versions,
 * header fields, bare LF), every prefix of a valid head incomplete, garbage refused as
 * soon as it is seen and still refused with more bytes after it, and the head's bounds.
 * (Fuzzed by tests/fuzz/fuzz_httpreq.c.) */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/httpreq.h"

#include <stdio.h>
#include <string.h>

static enum httpreq_status parse(const char *s, struct httpreq *r)
{
	return httpreq_parse(s, strlen(s), r);
}

static void test_http_complete(void **state)
{
	struct httpreq r;
	const char *req = "GET /metrics?a=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\nBODY";

	(void)state;
	assert_int_equal(parse(req, &r), HTTPREQ_DONE);
	assert_true(httpreq_method_is(&r, "GET"));
	assert_true(httpreq_path_is(&r, "/metrics"));
	assert_int_equal(r.major, 1);
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.head_len, strlen(req) - 4);
	assert_int_equal(parse("HEAD /metrics HTTP/1.0\n\n", &r), HTTPREQ_DONE);
	assert_true(httpreq_method_is(&r, "HEAD"));
	assert_int_equal(r.minor, 0);
	assert_int_equal(parse("PRI * HTTP/2.0\r\n\r\n", &r), HTTPREQ_DONE);
	assert_int_equal(r.major, 2);
	assert_int_equal(parse("GET /x HTTP/1.1\r\nX-Empty:\r\nX-Sp: a b\t\xc3\xa9\r\n\r\n", &r),
			 HTTPREQ_DONE);
}

/* Every prefix of a valid request is incomplete, never bad. */
static void test_http_prefixes(void **state)
{
	const char *req = "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\n\r\n";
	struct httpreq r;

	(void)state;
	for (size_t n = 0; n < strlen(req); n++)
		assert_int_equal(httpreq_parse(req, n, &r), HTTPREQ_INCOMPLETE);
	assert_int_equal(httpreq_parse(req, strlen(req), &r), HTTPREQ_DONE);
}

/* Garbage is refused as soon as it is seen. */
static void test_http_bad(void **state)
{
	static const char *const bad[] = {
	    "\x16\x03\x01",	      /* TLS */
	    " GET",		      /* leading space */
	    "GET  /",		      /* two spaces */
	    "GE(T / HTTP/1.1\r\n",    /* not a token */
	    "GET / HTTP/1.1 \r\n",    /* junk after the version */
	    "GET / HTTQ",	      /* not HTTP */
	    "GET / HTTP/1.x",	      /* not a digit */
	    "GET /\r\n\r\n",	      /* HTTP/0.9 */
	    "GET /\x01 HTTP/1.1\r\n", /* control byte in the target */
	    "GET / HTTP/1.1\rX",      /* CR without LF */
	    "GET / HTTP/1.1\r\nNo colon\r\n\r\n",
	    "GET / HTTP/1.1\r\nName : v\r\n\r\n",
	    "GET / HTTP/1.1\r\n folded\r\n\r\n",
	    "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
	    "GET / HTTP/1.1\r\n:v\r\n\r\n",
	    "\r\n",
	};
	struct httpreq r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i], &r) != HTTPREQ_BAD)
			fail_msg("not refused: case %zu", i);
	}
	assert_int_equal(httpreq_parse("GET / HTTP/1.1\r\n\0\r\n", 19, &r), HTTPREQ_BAD);
}

/* Once refused, refused whatever follows: the endpoint answers 400 at the first bad byte
 * and need not wait for more. */
static void test_http_bad_stays_bad(void **state)
{
	static const char *const bad[] = {"GE(T", "GET  /", "GET / HTTP/1.1\r\nNo colon\r\n"};
	static const char *const more[] = {"", " / HTTP/1.1\r\n\r\n", "\r\n\r\n", "x: y\r\n"};
	struct httpreq r;
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (size_t j = 0; j < sizeof(more) / sizeof(more[0]); j++) {
			snprintf(buf, sizeof(buf), "%s%s", bad[i], more[j]);
			if (parse(buf, &r) != HTTPREQ_BAD)
				fail_msg("%s + %zu: not refused", bad[i], j);
		}
}

/* The parsed fields point into the buffer and the head ends at the empty line, whatever
 * follows it (a pipelined request, a body). */
static void test_http_bounds(void **state)
{
	const char *req = "GET /metrics HTTP/1.1\r\n\r\nGET /other HTTP/1.1\r\n\r\n";
	struct httpreq r;

	(void)state;
	assert_int_equal(parse(req, &r), HTTPREQ_DONE);
	assert_int_equal(r.head_len, strlen("GET /metrics HTTP/1.1\r\n\r\n"));
	assert_ptr_equal(r.method, req);
	assert_int_equal(r.method_len, 3);
	assert_ptr_equal(r.path, req + 4);
	assert_int_equal(r.path_len, strlen("/metrics"));
	assert_false(httpreq_path_is(&r, "/metric"));
	assert_false(httpreq_path_is(&r, "/metricsX"));
	assert_false(httpreq_method_is(&r, "GETX"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_http_complete), cmocka_unit_test(test_http_prefixes),
	    cmocka_unit_test(test_http_bad),	  cmocka_unit_test(test_http_bad_stays_bad),
	    cmocka_unit_test(test_http_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
