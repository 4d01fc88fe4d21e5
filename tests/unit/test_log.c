/* Unit tests of common/log.c: rate limiting per call site, the "suppressed N" line,
 * level filtering, level names, the line format. stderr is captured in a temp file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

static int saved_stderr = -1, capture_fd = -1;
static char captured[1 << 16];

/* Nothing may assert between capture_start() and capture_end(): cmocka reports failures
 * on stderr, which is then the temp file. */
static void capture_start(void)
{
	char path[] = "/tmp/test_log.XXXXXX";

	capture_fd = mkstemp(path);
	assert_true(capture_fd >= 0);
	unlink(path);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(capture_fd, STDERR_FILENO) >= 0);
}

static const char *capture_end(void)
{
	ssize_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	assert_int_equal(lseek(capture_fd, 0, SEEK_SET), 0);
	n = read(capture_fd, captured, sizeof(captured) - 1);
	close(capture_fd);
	assert_true(n >= 0);
	captured[n] = '\0';
	return captured;
}

static int count_of(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static int count_lines(const char *s)
{
	return count_of(s, "\n");
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* Rate limiting counts per monotonic second: start a burst early in a second so it
 * cannot straddle two windows. */
static void wait_early_in_second(void)
{
	while (clock_mono_ms() % 1000 >= 500)
		sleep_ms(5);
}

static void wait_next_second(void)
{
	int64_t s = clock_mono_ms() / 1000;

	while (clock_mono_ms() / 1000 == s)
		sleep_ms(5);
}

static int setup(void **state)
{
	(void)state;
	log_init("test_log", LOG_LVL_INFO);
	log_set_burst(20);
	return 0;
}

/* One call site, so one format string address: one rate-limit budget. */
static void noisy(int i)
{
	log_warn("noisy line %d", i);
}

static void burst_then_suppressed(void **state)
{
	const char *out;

	(void)state;
	log_set_burst(5);
	wait_early_in_second();
	capture_start();
	for (int i = 0; i < 20; i++)
		noisy(i);
	log_flush_suppressed();
	out = capture_end();
	assert_int_equal(count_of(out, "warn: noisy line "), 5);
	assert_non_null(strstr(out, "warn: noisy line 4\n"));
	assert_null(strstr(out, "noisy line 5\n"));
	assert_int_equal(count_of(out, "suppressed 15 similar lines"), 1);
	assert_true(strstr(out, "suppressed 15") > strstr(out, "noisy line 4"));
	assert_int_equal(count_lines(out), 6);
	/* Flushed once: a second flush prints nothing. */
	capture_start();
	log_flush_suppressed();
	out = capture_end();
	assert_string_equal(out, "");
}

static void quiet_site(int i)
{
	log_error("quiet line %d", i);
}

/* When the second is over, the next line of that call site first says how many were
 * dropped, and a new burst is allowed. */
static void suppressed_line_in_next_second(void **state)
{
	const char *out, *sup, *line;

	(void)state;
	log_set_burst(3);
	wait_early_in_second();
	capture_start();
	for (int i = 0; i < 10; i++)
		quiet_site(i);
	wait_next_second();
	for (int i = 10; i < 13; i++)
		quiet_site(i);
	out = capture_end();
	assert_int_equal(count_of(out, "error: quiet line "), 6);
	sup = strstr(out, "error: suppressed 7 similar lines in 1s (\"quiet line %d\")\n");
	line = strstr(out, "quiet line 10\n");
	assert_non_null(sup);
	assert_non_null(line);
	assert_true(sup < line);
	assert_null(strstr(out, "quiet line 3\n"));
	assert_int_equal(count_lines(out), 7);
}

static void other_site(void)
{
	log_warn("a different site");
}

/* A noisy call site does not use up the budget of another one. */
static void budgets_are_per_call_site(void **state)
{
	const char *out;

	(void)state;
	log_set_burst(2);
	wait_early_in_second();
	capture_start();
	for (int i = 0; i < 10; i++)
		noisy(100 + i);
	other_site();
	log_always("counters %d", 1);
	log_always("counters %d", 2);
	log_always("counters %d", 3);
	log_flush_suppressed();
	out = capture_end();
	assert_int_equal(count_of(out, "noisy line 1"), 2);
	assert_int_equal(count_of(out, "a different site"), 1);
	assert_int_equal(count_of(out, "info: counters "), 3); /* never rate limited */
	assert_int_equal(count_of(out, "suppressed 8 similar lines"), 1);
}

static void flood_site(int i)
{
	log_warn("flood %d", i);
}

/* A flood that stops is still accounted for once its second is over: the next line of any
 * call site reports it, not only a later line of the flooding site. */
static void suppressed_reported_by_any_later_line(void **state)
{
	const char *out, *sup, *line;

	(void)state;
	log_set_burst(2);
	wait_early_in_second();
	capture_start();
	for (int i = 0; i < 5; i++)
		flood_site(i);
	wait_next_second();
	log_info("unrelated line");
	out = capture_end();
	sup = strstr(out, "warn: suppressed 3 similar lines in 1s (\"flood %d\")\n");
	line = strstr(out, "info: unrelated line\n");
	assert_non_null(sup);
	assert_non_null(line);
	assert_true(sup < line);
	assert_int_equal(count_lines(out), 4);
}

static void level_filtering(void **state)
{
	const char *out;

	(void)state;
	log_set_level(LOG_LVL_WARN);
	assert_int_equal(log_get_level(), LOG_LVL_WARN);
	capture_start();
	log_error("lvl error");
	log_warn("lvl warn");
	log_info("lvl info");
	log_debug("lvl debug");
	log_always("lvl always");
	log_set_level(LOG_LVL_DEBUG);
	log_debug("lvl debug2");
	log_set_level(LOG_LVL_ERROR);
	log_warn("lvl warn2");
	log_set_level(LOG_LVL_INFO);
	out = capture_end();
	assert_non_null(strstr(out, " error: lvl error\n"));
	assert_non_null(strstr(out, " warn: lvl warn\n"));
	assert_null(strstr(out, "lvl info"));
	assert_null(strstr(out, "lvl debug\n"));
	assert_non_null(strstr(out, " info: lvl always\n"));
	assert_non_null(strstr(out, " debug: lvl debug2\n"));
	assert_null(strstr(out, "lvl warn2"));
	assert_int_equal(count_lines(out), 4);
}

static void level_parse_and_names(void **state)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};
	enum log_level l;

	(void)state;
	for (int i = 0; i < 4; i++) {
		l = LOG_LVL_DEBUG;
		assert_int_equal(log_level_parse(names[i], &l), 0);
		assert_int_equal(l, i);
		assert_string_equal(log_level_name(l), names[i]);
	}
	l = LOG_LVL_WARN;
	assert_int_equal(log_level_parse("Warn", &l), -1);
	assert_int_equal(log_level_parse("warning", &l), -1);
	assert_int_equal(log_level_parse("", &l), -1);
	assert_int_equal(log_level_parse("info ", &l), -1);
	assert_int_equal(l, LOG_LVL_WARN); /* untouched on error */
	assert_string_equal(log_level_name((enum log_level)7), "?");
	assert_string_equal(log_level_name((enum log_level) - 1), "?");
}

/* "2026-11-26T03:28:02.123Z test_log[PID] warn: text\n", one write per line. */
static void line_format(void **state)
{
	char want[64], tail[64];
	const char *out;
	int y, mo, d, h, mi, s, ms, n = 0;

	(void)state;
	capture_start();
	log_warn("hello %s %d", "world", 42);
	out = capture_end();
	assert_int_equal(
	    sscanf(out, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ %n", &y, &mo, &d, &h, &mi, &s, &ms, &n), 7);
	assert_true(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31);
	assert_true(h < 24 && mi < 60 && s <= 60 && ms < 1000);
	assert_int_equal(n, 25);
	snprintf(want, sizeof(want), "test_log[%d] warn: hello world 42\n", (int)getpid());
	snprintf(tail, sizeof(tail), "%s", out + n);
	assert_string_equal(tail, want);
}

/* A message longer than the line buffer is cut, still ends in a newline, one line. */
static void long_message_truncated(void **state)
{
	char *msg = malloc(5001);
	const char *out;

	(void)state;
	memset(msg, 'z', 5000);
	msg[5000] = '\0';
	capture_start();
	log_info("%s", msg);
	out = capture_end();
	free(msg);
	assert_int_equal(count_lines(out), 1);
	assert_true(strlen(out) < 2048);
	assert_true(strlen(out) > 2000);
	assert_int_equal(out[strlen(out) - 1], '\n');
	assert_int_equal(out[strlen(out) - 2], 'z');
}

static void plain_has_no_prefix(void **state)
{
	const char *out;

	(void)state;
	capture_start();
	log_plain("port = %d\n", 80);
	out = capture_end();
	assert_string_equal(out, "port = 80\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(burst_then_suppressed, setup),
	    cmocka_unit_test_setup(suppressed_line_in_next_second, setup),
	    cmocka_unit_test_setup(budgets_are_per_call_site, setup),
	    cmocka_unit_test_setup(suppressed_reported_by_any_later_line, setup),
	    cmocka_unit_test_setup(level_filtering, setup),
	    cmocka_unit_test_setup(level_parse_and_names, setup),
	    cmocka_unit_test_setup(line_format, setup),
	    cmocka_unit_test_setup(long_message_truncated, setup),
	    cmocka_unit_test_setup(plain_has_no_prefix, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
