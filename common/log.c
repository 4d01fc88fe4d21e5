#include "log.h"
#include "clock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Rate limiting is keyed by the format string's address: every call site has its own
 * budget, so one noisy peer cannot hide an unrelated error. A small open table is enough;
 * when it is full, lines are not rate limited (never dropped silently). */
#define LOG_SLOTS 64

struct log_slot {
	const char *fmt;
	int64_t window; /* second (monotonic) of the current window */
	unsigned count;
	unsigned suppressed;
	enum log_level level;
};

static const char *log_prog = "teardown";
static enum log_level log_threshold = LOG_LVL_INFO;
static unsigned log_burst = 20;
static struct log_slot log_slots[LOG_SLOTS];

const char *const log_level_names[] = {
    [LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",	   [LOG_LVL_INFO] = "info",
    [LOG_LVL_DEBUG] = "debug", [LOG_LVL_DEBUG + 1] = NULL,
};

void log_init(const char *prog, enum log_level level)
{
	log_prog = prog;
	log_threshold = level;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

void log_set_burst(unsigned burst)
{
	log_burst = burst;
}

int log_level_parse(const char *s, enum log_level *out)
{
	for (size_t i = 0; log_level_names[i] != NULL; i++) {
		if (strcmp(s, log_level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned)level <= LOG_LVL_DEBUG ? log_level_names[level] : "?";
}

static void log_prefix(char *buf, size_t len, const char *level)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %s: ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000,
		 log_prog, (int)getpid(), level);
}

/* ---- the queue between the program and the writer thread ---------------------------- */

/* A ring of records, each a 2-byte length and the bytes of one line (or of one log_plain
 * text): lines go in and come out whole, so a full buffer drops whole lines. */
struct log_queue {
	char *buf;
	size_t cap, head, used;
	uint64_t dropped;    /* lines dropped since log_start() */
	uint64_t unreported; /* of those, dropped since the last report was queued */
};

/* Everything below is shared with the writer thread and guarded by mu. */
static struct {
	pthread_mutex_t mu;
	pthread_cond_t wake; /* the writer: lines queued, or stop */
	pthread_cond_t idle; /* log_finish(): the queue is empty and nothing is being written */
	struct log_queue q;
	int busy; /* the writer holds a batch it has not finished writing */
	int stop;
	int running; /* only the program's thread reads or sets it */
	pthread_t thread;
} lw = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void ring_put(struct log_queue *q, const void *src, size_t n)
{
	size_t at = (q->head + q->used) % q->cap, first = n < q->cap - at ? n : q->cap - at;

	memcpy(q->buf + at, src, first);
	memcpy(q->buf, (const char *)src + first, n - first);
	q->used += n;
}

static void ring_get(struct log_queue *q, void *dst, size_t n)
{
	size_t first = n < q->cap - q->head ? n : q->cap - q->head;

	memcpy(dst, q->buf + q->head, first);
	memcpy((char *)dst + first, q->buf, n - first);
	q->head = (q->head + n) % q->cap;
	q->used -= n;
}

/* 0, or -1 when the record does not fit (nothing is queued; the caller counts the drop).
 * A record is at most PIPE_BUF bytes (lines are cut at 2 KiB, log_plain at 4 KiB - 1), so
 * the writer's batch always takes the first one. */
static int queue_push(struct log_queue *q, const char *rec, size_t n)
{
	uint16_t len = (uint16_t)n;

	if (q->buf == NULL || n > PIPE_BUF || q->used + sizeof(len) + n > q->cap)
		return -1;
	ring_put(q, &len, sizeof(len));
	ring_put(q, rec, n);
	return 0;
}

/* Moves whole records, as many as fit in max bytes (at least one), into out. Returns the
 * bytes moved and sets *lines. */
static size_t queue_pop(struct log_queue *q, char *out, size_t max, unsigned *lines)
{
	size_t n = 0;
	uint16_t len;

	*lines = 0;
	while (q->used > 0) {
		size_t first = sizeof(len) < q->cap - q->head ? sizeof(len) : q->cap - q->head;

		memcpy(&len, q->buf + q->head, first); /* peek: the length may wrap too */
		memcpy((char *)&len + first, q->buf, sizeof(len) - first);
		if (n + len > max)
			break;
		ring_get(q, &len, sizeof(len));
		ring_get(q, out + n, len);
		n += len;
		(*lines)++;
	}
	return n;
}

/* Queues the line that reports the drops, before any line that came after them; called
 * with mu held. Once it is queued the count starts again. */
static void queue_report(struct log_queue *q)
{
	char line[256];
	size_t n;

	if (q->unreported == 0)
		return;
	log_prefix(line, sizeof(line), "warn");
	n = strlen(line);
	snprintf(line + n, sizeof(line) - n,
		 "log: %llu lines dropped: stderr did not take them as fast as they came "
		 "(log_dropped counts them)\n",
		 (unsigned long long)q->unreported);
	if (queue_push(q, line, strlen(line)) == 0)
		q->unreported = 0;
}

/* ---- the writer thread ------------------------------------------------------------ */

/* Writes all of p, however many calls it takes: after a partial write the rest of the
 * batch (the rest of its line first) goes before anything else. fd 2 is normally
 * blocking; if another holder of its open file description set O_NONBLOCK, EAGAIN waits
 * in poll() rather than spinning. 0, or -1 when fd 2 failed (EPIPE: no reader left). */
static int log_write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(STDERR_FILENO, p, n);
		struct pollfd pfd = {.fd = STDERR_FILENO, .events = POLLOUT};

		if (k > 0) {
			p += k;
			n -= (size_t)k;
		} else if (k < 0 && errno == EAGAIN) {
			if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
				return -1;
		} else if (k == 0 || errno != EINTR) {
			return -1;
		}
	}
	return 0;
}

/* One write(2) per batch of whole lines of at most PIPE_BUF bytes: a pipe write that size
 * is atomic (pipe(7)), so the lines of several processes sharing fd 2 never interleave
 * mid-line, and a file or terminal gets one call for many lines. */
static void *log_writer(void *arg)
{
	static char batch[PIPE_BUF];
	unsigned lines;
	size_t n;
	int rc;

	(void)arg;
	/* Named for top -H, ps -L and the tests (/proc/PID/task/TID/comm); best effort. */
	(void)pthread_setname_np(pthread_self(), LOG_WRITER_THREAD);
	pthread_mutex_lock(&lw.mu);
	for (;;) {
		while (lw.q.used == 0 && !lw.stop)
			pthread_cond_wait(&lw.wake, &lw.mu);
		if (lw.q.used == 0)
			break;
		n = queue_pop(&lw.q, batch, sizeof(batch), &lines);
		lw.busy = 1;
		pthread_mutex_unlock(&lw.mu);
		rc = log_write_all(batch, n);
		pthread_mutex_lock(&lw.mu);
		lw.busy = 0;
		if (rc < 0) { /* lost: counted, and reported if writing works again */
			lw.q.dropped += lines;
			lw.q.unreported += lines;
		} else {
			queue_report(&lw.q); /* writing works: room was just made */
		}
		if (lw.q.used == 0)
			pthread_cond_broadcast(&lw.idle);
	}
	pthread_mutex_unlock(&lw.mu);
	return NULL;
}

/* ---- emitting a line -------------------------------------------------------------- */

/* Synchronous before log_start(): one write per line, as before any loop runs. After it,
 * never waits for fd 2 (only for mu, which the writer holds for a copy of at most a
 * batch). Lines that came after a drop wait behind its report, so the report stands where
 * the gap is. */
static void log_emit(const char *line, size_t n)
{
	if (!lw.running) {
		ssize_t k = write(STDERR_FILENO, line, n); /* a failure has nowhere to go */

		(void)k;
		return;
	}
	pthread_mutex_lock(&lw.mu);
	queue_report(&lw.q);
	if (lw.q.unreported > 0 || queue_push(&lw.q, line, n) < 0) {
		lw.q.dropped++;
		lw.q.unreported++;
	} else {
		pthread_cond_signal(&lw.wake);
	}
	pthread_mutex_unlock(&lw.mu);
}

static void log_write(const char *level, const char *fmt, va_list ap)
{
	char line[2048];
	size_t n;
	int r;

	log_prefix(line, sizeof(line), level);
	n = strlen(line);
	r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	if (r < 0)
		return;
	n += (size_t)r < sizeof(line) - n - 1 ? (size_t)r : sizeof(line) - n - 2;
	line[n++] = '\n';
	/* One record, so one write, per line: lines of several processes do not interleave. */
	log_emit(line, n);
}

static void log_writef(const char *level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void log_writef(const char *level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write(level, fmt, ap);
	va_end(ap);
}

static void log_emit_suppressed(struct log_slot *s)
{
	if (s->suppressed == 0)
		return;
	log_writef(log_level_name(s->level), "suppressed %u similar lines in 1s (\"%.60s\")",
		   s->suppressed, s->fmt);
	s->suppressed = 0;
}

/* Reports the drops of every call site whose second is over, so a flood that stops is
 * accounted for at the next line of any site (or at exit), not only at a later line of the
 * site that flooded, which may never come. */
static void log_emit_stale(int64_t now)
{
	for (size_t i = 0; i < LOG_SLOTS && log_slots[i].fmt != NULL; i++) {
		if (log_slots[i].window != now)
			log_emit_suppressed(&log_slots[i]);
	}
}

/* Returns 1 when the line may be printed. */
static int log_admit(enum log_level level, const char *fmt)
{
	int64_t now = clock_mono_ms() / 1000;
	struct log_slot *s = NULL;

	log_emit_stale(now);
	for (size_t i = 0; i < LOG_SLOTS; i++) {
		if (log_slots[i].fmt == fmt || log_slots[i].fmt == NULL) {
			s = &log_slots[i];
			break;
		}
	}
	if (s == NULL)
		return 1;
	if (s->fmt == NULL) {
		s->fmt = fmt;
		s->level = level;
		s->window = now;
	}
	if (s->window != now) {
		log_emit_suppressed(s);
		s->window = now;
		s->count = 0;
	}
	if (++s->count <= log_burst)
		return 1;
	s->suppressed++;
	return 0;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	if (level > log_threshold)
		return;
	/* debug is asked for explicitly, to trace every connection: never rate limited */
	if (level < LOG_LVL_DEBUG && !log_admit(level, fmt))
		return;
	log_write(log_level_name(level), fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void log_always(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_write("info", fmt, ap);
	va_end(ap);
}

void log_plain(const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(buf))
		n = sizeof(buf) - 1;
	log_emit(buf, (size_t)n);
}

void log_flush_suppressed(void)
{
	for (size_t i = 0; i < LOG_SLOTS && log_slots[i].fmt != NULL; i++)
		log_emit_suppressed(&log_slots[i]);
}

/* ---- lifecycle -------------------------------------------------------------------- */

int log_std_fds(void)
{
	for (int fd = 0; fd <= 2; fd++) {
		int got;

		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free fd: this one, since those below it are open */
		got = open("/dev/null", fd == 0 ? O_RDONLY : O_WRONLY);
		if (got != fd) {
			if (got >= 0)
				close(got);
			return -1;
		}
	}
	return 0;
}

/* idle is waited for with a monotonic deadline: a wall-clock step must not stretch or cut
 * the exit's bounded wait. */
static int log_sync_init(void)
{
	pthread_condattr_t attr;
	int rc;

	rc = pthread_condattr_init(&attr);
	if (rc == 0)
		rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (rc == 0)
		rc = pthread_cond_init(&lw.idle, &attr);
	if (rc == 0)
		rc = pthread_cond_init(&lw.wake, NULL);
	pthread_condattr_destroy(&attr);
	return rc;
}

/* fork() copies only the calling thread: the lock is taken across it so the child's copy
 * of the queue is consistent, and the child, which has no writer thread, starts afresh
 * (synchronous, empty: the queued lines are the parent's to write; its own counts). Its
 * mutex and condition variables are initialised again: the copies may record the parent's
 * writer as a waiter that does not exist in the child. */
static void log_atfork_prepare(void)
{
	pthread_mutex_lock(&lw.mu);
}

static void log_atfork_parent(void)
{
	pthread_mutex_unlock(&lw.mu);
}

static void log_atfork_child(void)
{
	pthread_mutex_init(&lw.mu, NULL);
	log_sync_init();
	lw.running = lw.busy = lw.stop = 0;
	lw.q.head = lw.q.used = 0;
	lw.q.dropped = lw.q.unreported = 0;
}

static int log_prepare(size_t buffer)
{
	static int registered;
	char *buf;
	int rc;

	if (!registered) {
		rc = pthread_atfork(log_atfork_prepare, log_atfork_parent, log_atfork_child);
		if (rc == 0)
			rc = log_sync_init();
		if (rc != 0) {
			log_error("log: pthread_atfork: %s", strerror(rc));
			return -1;
		}
		registered = 1;
	}
	buf = malloc(buffer);
	if (buf == NULL) {
		log_error("log: buffer of %zu bytes: %s", buffer, strerror(errno));
		return -1;
	}
	pthread_mutex_lock(&lw.mu);
	free(lw.q.buf);
	lw.q = (struct log_queue){.buf = buf, .cap = buffer};
	lw.busy = lw.stop = 0;
	pthread_mutex_unlock(&lw.mu);
	return 0;
}

int log_start(size_t buffer)
{
	sigset_t all, old;
	int rc;

	if (lw.running)
		return 0;
	if (log_prepare(buffer < LOG_BUFFER_MIN ? LOG_BUFFER_MIN : buffer) < 0)
		return -1;
	/* The thread inherits this mask: with every signal blocked, the process's signals go
	 * to the program's thread (libevent's handlers, the supervisor's sigtimedwait), and a
	 * write to a closed pipe fails with EPIPE in the writer instead of raising SIGPIPE. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&lw.thread, NULL, log_writer, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("log: pthread_create: %s", strerror(rc));
		return -1;
	}
	lw.running = 1;
	return 0;
}

/* Waits, with mu held, until the queue is empty and nothing is being written, or until
 * timeout_ms have passed. 0, or -1 on the timeout. */
static int log_wait_idle(int64_t timeout_ms)
{
	struct timespec deadline;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)(timeout_ms / 1000);
	deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	while ((lw.q.used > 0 || lw.busy) && rc == 0)
		rc = pthread_cond_timedwait(&lw.idle, &lw.mu, &deadline);
	return lw.q.used > 0 || lw.busy ? -1 : 0;
}

int log_flush(int64_t timeout_ms)
{
	int rc;

	if (!lw.running)
		return 0;
	pthread_mutex_lock(&lw.mu);
	rc = log_wait_idle(timeout_ms);
	pthread_mutex_unlock(&lw.mu);
	return rc;
}

int log_finish(int64_t timeout_ms)
{
	if (!lw.running)
		return 0;
	pthread_mutex_lock(&lw.mu);
	if (log_wait_idle(timeout_ms) < 0) {
		pthread_mutex_unlock(&lw.mu);
		return -1;
	}
	lw.stop = 1;
	pthread_cond_signal(&lw.wake);
	pthread_mutex_unlock(&lw.mu);
	pthread_join(lw.thread, NULL);
	lw.running = 0;
	return 0;
}

uint64_t log_dropped_lines(void)
{
	uint64_t n;

	pthread_mutex_lock(&lw.mu);
	n = lw.q.dropped;
	pthread_mutex_unlock(&lw.mu);
	return n;
}
