/* log: the only code that writes to stderr.
 *
 * Lines look like "2026-11-26T03:28:02.123Z echo-server[123] warn: text". A line that
 * repeats (same format string) more than `burst` times within one second is suppressed;
 * when the second ends, one line says how many were dropped. debug lines are never
 * suppressed: that level is asked for to trace every connection. */
#ifndef TEARDOWN_LOG_H
#define TEARDOWN_LOG_H

#include <stdarg.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* Program name printed in every line, and the threshold. */
void log_init(const char *prog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Lines with the same format allowed per second before suppression (default 20). */
void log_set_burst(unsigned burst);
/* "error", "warn", "info", "debug" -> 0 and *out set; anything else -> -1. */
int log_level_parse(const char *s, enum log_level *out);
const char *log_level_name(enum log_level level);
/* The one list of the levels' names, indexed by enum log_level and NULL-terminated: also
 * the log_level key's choices (server/config.c), so a config's index is the level. */
extern const char *const log_level_names[];

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap);
/* A line printed whatever the level and never rate limited (counters, usage errors). */
void log_always(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Plain text to stderr, no prefix (usage text, --check-config output). */
void log_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Emit pending "suppressed N" lines now (at exit). */
void log_flush_suppressed(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_LVL_DEBUG)                                              \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                       \
	} while (0)

#endif
