/* metrics: the Prometheus text rendering (escaping, floats, families, the histogram from a
 * struct hist, the whole page). The endpoint's HTTP request-head parser: test_httpreq.c;
 * the parsers of /proc/net/netstat and /proc/net/sockstat: test_kstat.c. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "server/metrics_text.h"

#include <event2/buffer.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The buffer's text, NUL-terminated; the caller frees it. */
static char *text_of(struct evbuffer *b)
{
	size_t n = evbuffer_get_length(b);
	char *s = malloc(n + 1);

	assert_non_null(s);
	assert_int_equal(evbuffer_copyout(b, s, n), (ev_ssize_t)n);
	s[n] = '\0';
	return s;
}

static int has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return 1;
	return 0;
}

static const char *line_pos(const char *text, const char *line)
{
	const char *p = strstr(text, line);

	assert_non_null(p);
	return p;
}

/* ---- escaping and numbers ---------------------------------------------------------- */

static void test_escape_label(void **state)
{
	char out[64];

	(void)state;
	assert_int_equal(metrics_text_escape_label("eof", out, sizeof(out)), 3);
	assert_string_equal(out, "eof");
	assert_int_equal(metrics_text_escape_label("a\\b\"c\nd", out, sizeof(out)), 10);
	assert_string_equal(out, "a\\\\b\\\"c\\nd");
	assert_int_equal(metrics_text_escape_label("", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	/* Does not fit: -1, and a NUL-terminated prefix without half an escape. */
	assert_int_equal(metrics_text_escape_label("abc\"", out, 5), -1);
	assert_string_equal(out, "abc");
	assert_int_equal(metrics_text_escape_label("x", out, 0), -1);
}

static void test_format_double(void **state)
{
	char buf[40];

	(void)state;
	metrics_text_format_double(0, buf, sizeof(buf));
	assert_string_equal(buf, "0");
	metrics_text_format_double(0.1, buf, sizeof(buf));
	assert_string_equal(buf, "0.1");
	metrics_text_format_double(3e-06, buf, sizeof(buf));
	assert_string_equal(buf, "3e-06");
	metrics_text_format_double(123456789.0, buf, sizeof(buf));
	assert_string_equal(buf, "123456789");
	metrics_text_format_double(1.0 / 3.0, buf, sizeof(buf));
	assert_true(strtod(buf, NULL) == 1.0 / 3.0);
	metrics_text_format_double(INFINITY, buf, sizeof(buf));
	assert_string_equal(buf, "+Inf");
	metrics_text_format_double(-INFINITY, buf, sizeof(buf));
	assert_string_equal(buf, "-Inf");
	metrics_text_format_double(NAN, buf, sizeof(buf));
	assert_string_equal(buf, "NaN");
}

/* ---- families ---------------------------------------------------------------------- */

static void test_family_and_samples(void **state)
{
	struct evbuffer *b = evbuffer_new();
	struct mtext w = {.b = b, .failed = 0};
	char *t;

	(void)state;
	metrics_text_family(&w, "x_total", "counter",
			    "Backslash \\ and\nnewline, \"quotes\" kept.");
	metrics_text_u64(&w, "x_total", "reason", "write-timeout", 18446744073709551615ULL);
	metrics_text_u64(&w, "x_total", "reason", "a\"b", 0);
	metrics_text_double(&w, "x_total", NULL, NULL, 2.5);
	assert_int_equal(w.failed, 0);
	t = text_of(b);
	assert_string_equal(t, "# HELP x_total Backslash \\\\ and\\nnewline, \"quotes\" kept.\n"
			       "# TYPE x_total counter\n"
			       "x_total{reason=\"write-timeout\"} 18446744073709551615\n"
			       "x_total{reason=\"a\\\"b\"} 0\n"
			       "x_total 2.5\n");
	free(t);
	evbuffer_free(b);
}

/* Buckets are cumulative, each counts the hist buckets entirely <= le, +Inf = count, the
 * sum is exact and scaled. */
static void test_histogram(void **state)
{
	static const struct stats_bound bounds[] = {
	    {"0.00001", 10}, {"0.001", 1000}, {"1", 1000000}};
	struct evbuffer *b = evbuffer_new();
	struct mtext w = {.b = b, .failed = 0};
	struct hist *h = calloc(1, sizeof(*h));
	char *t;

	(void)state;
	hist_record_n(h, 0, 2);
	hist_record(h, 10);	 /* exact bucket: counted in le=0.00001 */
	hist_record(h, 11);	 /* next */
	hist_record(h, 999);	 /* bucket [998, 999]: in le=0.001 */
	hist_record(h, 1000);	 /* bucket [1000, 1003] reaches above 1000: next bound */
	hist_record(h, 5000000); /* above every bound */
	metrics_text_histogram(&w, "lat_seconds", "Latency.", h, bounds, 3, 1e6);
	assert_int_equal(w.failed, 0);
	t = text_of(b);
	assert_true(has_line(t, "# TYPE lat_seconds histogram"));
	assert_true(has_line(t, "lat_seconds_bucket{le=\"0.00001\"} 3"));
	assert_true(has_line(t, "lat_seconds_bucket{le=\"0.001\"} 5"));
	assert_true(has_line(t, "lat_seconds_bucket{le=\"1\"} 6"));
	assert_true(has_line(t, "lat_seconds_bucket{le=\"+Inf\"} 7"));
	assert_true(has_line(t, "lat_seconds_sum 5.00202"));
	assert_true(has_line(t, "lat_seconds_count 7"));
	assert_true(line_pos(t, "le=\"0.00001\"") < line_pos(t, "le=\"+Inf\""));
	assert_true(line_pos(t, "le=\"+Inf\"") < line_pos(t, "lat_seconds_sum"));
	free(t);
	free(h);
	evbuffer_free(b);
}

static void test_fin_bounds_increase(void **state)
{
	(void)state;
	assert_true(stats_nfin_bounds > 10);
	for (size_t i = 0; i < stats_nfin_bounds; i++) {
		assert_true(fabs(strtod(stats_fin_bounds[i].le, NULL) * 1e6 -
				 (double)stats_fin_bounds[i].us) < 0.5);
		if (i > 0)
			assert_true(stats_fin_bounds[i].us > stats_fin_bounds[i - 1].us);
	}
}

/* ---- the page ---------------------------------------------------------------------- */

static struct stats *sample_stats(void)
{
	struct stats *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->open = 3;
	s->accepted = 10;
	s->closed[CLOSE_EOF] = 6;
	s->closed[CLOSE_RESET] = 1;
	s->bytes_in = 100;
	s->bytes_out = 90;
	s->emfile_pauses = 2;
	s->shed = 5;
	hist_record(&s->fin_to_close_us, 20);
	return s;
}

/* Every family: one HELP, one TYPE, before its samples, contiguous. */
static void check_families(const char *t)
{
	const char *p = t;
	char name[128], last[128] = "";

	while ((p = strstr(p, "# HELP ")) != NULL) {
		const char *type;
		size_t n = strcspn(p + 7, " ");

		assert_true(n < sizeof(name));
		memcpy(name, p + 7, n);
		name[n] = '\0';
		assert_string_not_equal(name, last);
		type = strchr(p, '\n') + 1;
		assert_memory_equal(type, "# TYPE ", 7);
		assert_memory_equal(type + 7, name, n);
		assert_true(strstr(t, p) == p);
		strcpy(last, name);
		p = type;
	}
}

static void test_render_page(void **state)
{
	struct stats *s = sample_stats();
	struct watchdog_fds fds = {.valid = 1, .open = 20, .conns = 3, .own = 16, .unaccounted = 1};
	struct watchdog_close_wait cw = {
	    .flushing = 2, .overdue = 4, .oldest_ms = 1500, .warnings = 7};
	struct census_counts census = {0};
	struct kstat base = {0}, now = {0};
	struct metrics_view v = {.stats = s,
				 .workers = 2,
				 .fds = &fds,
				 .cw = &cw,
				 .census = &census,
				 .kbase = &base,
				 .know = &now,
				 .metrics_cap_pauses = 1};
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	census.state[CENSUS_CLOSE_WAIT] = 4;
	census.state[CENSUS_LISTEN] = 2;
	census.accept_queue = 7;
	census.accept_backlog = 1022;
	base.tcpext_found = now.tcpext_found = 1U << KSTAT_LISTEN_OVERFLOWS;
	base.tcpext[KSTAT_LISTEN_OVERFLOWS] = 100;
	now.tcpext[KSTAT_LISTEN_OVERFLOWS] = 103;
	now.sockstat_found = 1U << KSTAT_TCP_ORPHAN;
	now.sockstat[KSTAT_TCP_ORPHAN] = 9;
	assert_int_equal(metrics_text_render(&v, b), 0);
	t = text_of(b);
	check_families(t);
	assert_true(has_line(t, "teardown_workers 2"));
	assert_true(has_line(t, "teardown_connections_open 3"));
	assert_true(has_line(t, "teardown_connections_accepted_total 10"));
	assert_true(has_line(t, "teardown_connections_closed_total{reason=\"eof\"} 6"));
	assert_true(has_line(t, "teardown_connections_closed_total{reason=\"write-timeout\"} 0"));
	assert_true(has_line(t, "teardown_fin_to_close_seconds_count 1"));
	assert_true(has_line(t, "teardown_fin_to_close_seconds_bucket{le=\"0.000025\"} 1"));
	assert_true(has_line(t, "teardown_fin_to_close_seconds_bucket{le=\"0.00001\"} 0"));
	assert_true(has_line(t, "teardown_fds_unaccounted 1"));
	assert_true(has_line(t, "teardown_close_wait_overdue_sockets 4"));
	assert_true(has_line(t, "teardown_close_wait_oldest_overdue_seconds 1.5"));
	assert_true(has_line(t, "teardown_close_wait_sockets 4"));
	assert_true(has_line(t, "teardown_port_sockets{state=\"listen\"} 2"));
	assert_true(has_line(t, "teardown_accept_queue_depth 7"));
	assert_true(has_line(t, "teardown_accept_queue_limit 1022"));
	assert_true(has_line(t, "teardown_netns_listen_overflows_total 3"));
	assert_null(strstr(t, "teardown_netns_tcp_abort_on_close_total")); /* not found */
	assert_true(has_line(t, "teardown_netns_sockstat_tcp_orphan 9"));
	assert_non_null(strstr(t, "Per network namespace, not per process"));
	assert_true(has_line(t, "teardown_emfile_pauses_total 2"));
	assert_true(has_line(t, "teardown_shed_total 5"));
	assert_true(has_line(t, "teardown_metrics_cap_pauses_total 1"));
	assert_true(t[strlen(t) - 1] == '\n');
	free(t);
	free(s);
	evbuffer_free(b);
}

/* Figures not measured are left out, not reported as 0. */
static void test_render_without_census(void **state)
{
	struct stats *s = sample_stats();
	struct watchdog_fds fds = {.valid = 0};
	struct metrics_view v = {.stats = s, .workers = 1, .fds = &fds};
	struct evbuffer *b = evbuffer_new();
	char *t;

	(void)state;
	assert_int_equal(metrics_text_render(&v, b), 0);
	t = text_of(b);
	check_families(t);
	assert_null(strstr(t, "teardown_fds_"));
	assert_null(strstr(t, "teardown_port_sockets"));
	assert_null(strstr(t, "teardown_close_wait"));
	assert_null(strstr(t, "teardown_netns_"));
	free(t);
	free(s);
	evbuffer_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escape_label),	  cmocka_unit_test(test_format_double),
	    cmocka_unit_test(test_family_and_samples),	  cmocka_unit_test(test_histogram),
	    cmocka_unit_test(test_fin_bounds_increase),	  cmocka_unit_test(test_render_page),
	    cmocka_unit_test(test_render_without_census),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
