#include "log.h"
#include "clock.h"

#include <stdio.h>
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
	/* One write() per line so lines of several processes do not interleave. */
	if (write(STDERR_FILENO, line, n) < 0)
		return;
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
	if (write(STDERR_FILENO, buf, (size_t)n) < 0)
		return;
}

void log_flush_suppressed(void)
{
	for (size_t i = 0; i < LOG_SLOTS && log_slots[i].fmt != NULL; i++)
		log_emit_suppressed(&log_slots[i]);
}
