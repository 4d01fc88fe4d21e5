/* Unit tests of common/log.c: rate limiting per call site, the "suppressed N" line,
 * level filtering, level names, the line format. stderr is captured in a temp file.
 * The writer thread: a full buffer drops whole lines and counts them, the report line
 * stands where the gap is, partial writes keep the rest first, the exit flush is bounded,
 * a forked child starts afresh, closed fds 0-2 get /dev/null. write(2) is wrapped
 * (-Wl,--wrap=write) so a test can cut writes short, fail them with EAGAIN, or stall them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

static void wrap_reset(void);

static int setup(void **state)
{
	(void)state;
	log_init("test_log", LOG_LVL_INFO);
	log_set_burst(20);
	wrap_reset();
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

/* ---- the writer thread ------------------------------------------------------------ */

ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);

/* What the wrapper does to writes on fd 2; all off by default (a plain write). */
static atomic_size_t wrap_max;	  /* at most this many bytes per call; 0: all */
static atomic_int wrap_eagain;	  /* every other call fails with EAGAIN */
static atomic_int wrap_stall_pid; /* writes of this process wait while it is set */
static atomic_uint wrap_calls;

ssize_t __wrap_write(int fd, const void *buf, size_t n)
{
	size_t max = atomic_load(&wrap_max);
	unsigned call;

	if (fd != STDERR_FILENO)
		return __real_write(fd, buf, n);
	while (atomic_load(&wrap_stall_pid) == (int)getpid())
		sleep_ms(1);
	call = atomic_fetch_add(&wrap_calls, 1);
	if (atomic_load(&wrap_eagain) && call % 2 == 0) {
		errno = EAGAIN;
		return -1;
	}
	return __real_write(fd, buf, max > 0 && n > max ? max : n);
}

static void wrap_reset(void)
{
	atomic_store(&wrap_max, 0);
	atomic_store(&wrap_eagain, 0);
	atomic_store(&wrap_stall_pid, 0);
	atomic_store(&wrap_calls, 0);
}

/* fd 2 becomes the write end of a one-page pipe (the smallest F_SETPIPE_SZ takes), which
 * nobody reads until the test does; returns the read end, non-blocking. Nothing may assert
 * until stderr_restore(): cmocka's report would go into that pipe. */
static int stderr_to_pipe(void)
{
	int p[2];

	assert_int_equal(pipe(p), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) >= 4096);
	assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_true(dup2(p[1], STDERR_FILENO) >= 0);
	close(p[1]);
	return p[0];
}

static void stderr_restore(int rfd)
{
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	close(rfd);
}

static char piped[1 << 20];
static size_t piped_len;

/* Appends what the pipe holds now to piped[], without waiting. */
static void pipe_drain(int rfd)
{
	ssize_t k;

	while (piped_len < sizeof(piped) - 1 &&
	       (k = read(rfd, piped + piped_len, sizeof(piped) - 1 - piped_len)) > 0)
		piped_len += (size_t)k;
	piped[piped_len] = '\0';
}

/* Reads the pipe until log_finish() has written everything and stopped the writer. */
static int pipe_drain_and_finish(int rfd)
{
	int64_t deadline = clock_mono_ms() + 20000;

	while (clock_mono_ms() < deadline) {
		pipe_drain(rfd);
		if (log_finish(10) == 0) {
			pipe_drain(rfd);
			return 0;
		}
	}
	return -1;
}

/* Debug lines are never rate limited: every numbered line is offered to the buffer. */
static void seq_line(int i)
{
	log_debug("seq %05d and some text to make the line about a hundred bytes long", i);
}

/* Walks the stream line by line: every line whole and well formed; numbered lines in
 * order, and wherever some are missing, a report line stands in the gap saying how many.
 * Returns the next expected number (the lines seen plus those reported), or -1. */
static int check_stream(const char *s, int *reports, unsigned long long *reported)
{
	char head[64];
	int expect = 0, n;

	snprintf(head, sizeof(head), "test_log[%d] ", (int)getpid());
	*reports = 0;
	*reported = 0;
	for (const char *line = s, *end; *line != '\0'; line = end + 1) {
		unsigned long long dropped;
		int seq;

		end = strchr(line, '\n');
		if (end == NULL || line[23] != 'Z' || strncmp(line + 25, head, strlen(head)) != 0)
			return -1; /* cut short, or not a line of ours */
		line += 25 + strlen(head);
		if (sscanf(line, "debug: seq %d and some text%n", &seq, &n) == 1 && n > 0) {
			if (seq != expect)
				return -1; /* a gap nobody reported */
			expect++;
		} else if (sscanf(line, "warn: log: %llu lines dropped: %n", &dropped, &n) == 1 &&
			   n > 0) {
			expect += (int)dropped;
			(*reports)++;
			*reported += dropped;
		} else {
			return -1;
		}
	}
	return expect;
}

/* The reader stalls: the caller never waits, whole lines are dropped and counted once the
 * buffer is full, and once the reader reads again one line reports the count, where the
 * gap is, before the lines logged after it. */
static void full_buffer_drops_whole_lines(void **state)
{
	int64_t t0, elapsed;
	uint64_t dropped_stalled, dropped_end;
	unsigned long long reported;
	int rfd, started, finished, next, reports;

	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	piped_len = 0;
	rfd = stderr_to_pipe();
	started = log_start(LOG_BUFFER_MIN);
	t0 = clock_mono_ms();
	for (int i = 0; i < 2000; i++)
		seq_line(i);
	elapsed = clock_mono_ms() - t0;
	dropped_stalled = log_dropped_lines();
	/* The reader is back: the writer makes room and queues the report, which is read
	 * once every line before it is; the lines logged after it then fit. */
	t0 = clock_mono_ms();
	do {
		sleep_ms(1);
		pipe_drain(rfd);
	} while (strstr(piped, "lines dropped") == NULL && clock_mono_ms() - t0 < 10000);
	for (int i = 2000; i < 2003; i++)
		seq_line(i);
	finished = pipe_drain_and_finish(rfd);
	dropped_end = log_dropped_lines();
	stderr_restore(rfd);
	print_message("2000 lines into a stalled pipe in %lld ms, %llu dropped\n",
		      (long long)elapsed, (unsigned long long)dropped_stalled);
	assert_int_equal(started, 0);
	assert_int_equal(finished, 0);
	assert_true(elapsed < 2000);
	/* a 16 KiB buffer and a 4 KiB pipe hold under 200 of these lines */
	assert_true(dropped_stalled > 1500);
	next = check_stream(piped, &reports, &reported);
	assert_int_equal(next, 2003);
	assert_true(reports >= 1);
	assert_int_equal(reported, dropped_end);
	assert_non_null(strstr(piped, "debug: seq 02002 "));
}

/* Writes cut short and failing with EAGAIN (as when someone else set O_NONBLOCK on the
 * open file description): the rest of a line is written first, nothing is lost or
 * reordered, and no line is dropped. */
static void partial_writes_keep_the_rest_first(void **state)
{
	char want[128];
	const char *out, *p;
	unsigned calls;
	int started, flushed, finished, ok = 1;

	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	wrap_reset();
	atomic_store(&wrap_max, 7);
	atomic_store(&wrap_eagain, 1);
	capture_start();
	started = log_start(LOG_BUFFER_DEFAULT);
	for (int i = 0; i < 300; i++)
		seq_line(i);
	log_plain("plain tail\n");
	flushed = log_flush(10000); /* all written, the writer still running */
	finished = log_finish(10000);
	calls = atomic_load(&wrap_calls);
	wrap_reset();
	out = capture_end();
	assert_int_equal(started, 0);
	assert_int_equal(flushed, 0);
	assert_int_equal(finished, 0);
	assert_int_equal(log_dropped_lines(), 0);
	p = out;
	for (int i = 0; i < 300 && ok; i++) {
		snprintf(want, sizeof(want), "test_log[%d] debug: seq %05d and some", (int)getpid(),
			 i);
		p = strstr(p, want);
		ok = p != NULL && p[-1] == ' ' && strchr(p, '\n') != NULL;
		if (ok)
			p = strchr(p, '\n') + 1;
	}
	assert_true(ok);
	assert_string_equal(p, "plain tail\n");
	assert_int_equal(count_lines(out), 301);
	print_message("%zu bytes in %u write calls\n", strlen(out), calls);
	assert_true(calls >= strlen(out) / 7);
}

/* At exit a stalled reader gets a bounded wait, then the writer is left behind; so does
 * log_flush(), which leaves the writer running. */
static void exit_flush_is_bounded(void **state)
{
	int64_t t0, elapsed, flush_elapsed;
	int rfd, started, flushed, first, recovered;

	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	piped_len = 0;
	rfd = stderr_to_pipe();
	started = log_start(LOG_BUFFER_MIN);
	for (int i = 0; i < 500; i++)
		seq_line(i);
	t0 = clock_mono_ms();
	flushed = log_flush(200);
	flush_elapsed = clock_mono_ms() - t0;
	t0 = clock_mono_ms();
	first = log_finish(300);
	elapsed = clock_mono_ms() - t0;
	recovered = pipe_drain_and_finish(rfd); /* so the next test starts with no writer */
	stderr_restore(rfd);
	print_message("with a stalled reader log_flush(200) returned after %lld ms, "
		      "log_finish(300) after %lld ms\n",
		      (long long)flush_elapsed, (long long)elapsed);
	assert_int_equal(started, 0);
	assert_int_equal(flushed, -1);
	assert_true(flush_elapsed >= 190);
	assert_true(flush_elapsed < 3000);
	assert_int_equal(first, -1);
	assert_true(elapsed >= 290);
	assert_true(elapsed < 3000);
	assert_int_equal(recovered, 0);
}

/* A fork while the writer is busy: the child has no writer thread (its lines are
 * synchronous until its own log_start()), writes none of the parent's queued lines, and
 * counts its own drops; the parent's lines are written once, by the parent. */
static void fork_child_starts_afresh(void **state)
{
	const char *out;
	pid_t pid;
	int st = -1, started, finished;

	(void)state;
	log_set_level(LOG_LVL_DEBUG);
	wrap_reset();
	capture_start();
	atomic_store(&wrap_stall_pid, (int)getpid());
	started = log_start(LOG_BUFFER_MIN);
	for (int i = 0; i < 3; i++)
		log_debug("parent line %d", i);
	pid = fork();
	if (pid == 0) {
		int ok;

		alarm(20); /* a child that deadlocks (a lock copied held) dies instead */
		ok = log_dropped_lines() == 0;
		log_debug("child sync line");
		ok = ok && log_start(LOG_BUFFER_MIN) == 0;
		log_debug("child async line");
		ok = ok && log_finish(5000) == 0;
		_exit(ok ? 0 : 1);
	}
	if (pid > 0)
		waitpid(pid, &st, 0);
	atomic_store(&wrap_stall_pid, 0);
	finished = log_finish(5000);
	out = capture_end();
	assert_int_equal(started, 0);
	assert_true(pid > 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(finished, 0);
	assert_int_equal(count_of(out, "debug: parent line "), 3);
	assert_int_equal(count_of(out, "debug: child sync line\n"), 1);
	assert_int_equal(count_of(out, "debug: child async line\n"), 1);
}

/* Started with fds 0, 1 and 2 closed: each gets /dev/null, and a socket opened next is
 * not fd 2 (which every log line would go into). */
static void closed_std_fds_get_dev_null(void **state)
{
	pid_t pid;
	int st = -1;

	(void)state;
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		struct stat null, s;
		int sock, bad = 0;

		close(0);
		close(1);
		close(2);
		if (log_std_fds() != 0 || stat("/dev/null", &null) != 0)
			_exit(2);
		for (int fd = 0; fd <= 2; fd++) {
			int acc = fcntl(fd, F_GETFL) & O_ACCMODE;

			if (fstat(fd, &s) != 0 || s.st_rdev != null.st_rdev ||
			    !S_ISCHR(s.st_mode) || acc != (fd == 0 ? O_RDONLY : O_WRONLY))
				bad = 1;
		}
		sock = socket(AF_UNIX, SOCK_STREAM, 0);
		_exit(bad ? 3 : sock <= 2 ? 4 : 0);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
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
	    cmocka_unit_test_setup(full_buffer_drops_whole_lines, setup),
	    cmocka_unit_test_setup(partial_writes_keep_the_rest_first, setup),
	    cmocka_unit_test_setup(exit_flush_is_bounded, setup),
	    cmocka_unit_test_setup(fork_child_starts_afresh, setup),
	    cmocka_unit_test_setup(closed_std_fds_get_dev_null, setup),
	};

	/* A writer that blocks for good (the failure these tests look for) ends the run. */
	alarm(120);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
