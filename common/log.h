/* log: the only code that writes to stderr.
 *
 * Lines look like "2026-11-26T03:28:02.123Z echo-server[123] warn: text". A line that
 * repeats (same format string) more than `burst` times within one second is suppressed;
 * when the second ends, one line says how many were dropped. debug lines are never
 * suppressed: that level is asked for to trace every connection.
 *
 * Until log_start(), every line is one blocking write(2) to fd 2: startup, usage text,
 * config errors and --check-config run before any event loop, where waiting for the
 * terminal is harmless. From log_start() on, the caller never waits for fd 2: a line is
 * copied into a bounded buffer of whole lines and a writer thread of this process does
 * the blocking writes. When the buffer is full (nobody reads the pipe, the socket, the
 * terminal), whole lines are dropped and counted (log_dropped_lines()), and once writing
 * works again one warn line says how many were dropped. fd 2's file status flags are never
 * changed: O_NONBLOCK belongs to the open file description, which the shell, the terminal,
 * `| tee` and every worker share.
 *
 * Contract: the log_* functions are called from one thread (the program's); log_start()
 * after the process's last fork() where it can (a fork later is safe: the child has no
 * writer thread and writes synchronously again until it calls log_start() itself, and
 * it drops the parent's queued lines, which the parent writes); log_finish() before any
 * exec and before exit, which bounds the wait for a stalled reader. */
#ifndef TEARDOWN_LOG_H
#define TEARDOWN_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* The line buffer of the writer thread (server key log_buffer): about 2,000 lines at
 * debug level, a burst the writer absorbs while its reader is briefly slow. */
#define LOG_BUFFER_DEFAULT (256 * 1024)
/* The smallest buffer log_start() takes: a longest line (log_plain's 4 KiB) and the
 * drop report. */
#define LOG_BUFFER_MIN (16 * 1024)
/* What log_finish() is given at exit: a reader that is not stalled takes microseconds;
 * one that is never gets more than this. */
#define LOG_FINISH_MS 1000

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

/* Opens /dev/null on whichever of fds 0, 1 and 2 is closed (started with `2>&-`), so that
 * the next socket does not become fd 2 and receive every log line. First thing in main().
 * 0, or -1 (nothing can be reported: stderr may be what is missing). */
int log_std_fds(void);
/* Starts the writer thread with a buffer of `buffer` bytes (at least LOG_BUFFER_MIN).
 * 0, or -1 with the reason logged (lines stay synchronous). No-op when already started. */
int log_start(size_t buffer);
/* Waits at most timeout_ms for the buffered lines to be written, then stops the writer
 * thread (lines are synchronous again). 0; -1 when lines were still waiting: the writer is
 * left blocked in write(2) and the process is expected to exit or exec around it. */
int log_finish(int64_t timeout_ms);
/* Waits at most timeout_ms for the lines logged so far to be written (the writer keeps
 * running). 0, or -1 when some still wait. Only where waiting is harmless: before the
 * event loop runs (the port file, a worker's ready signal). */
int log_flush(int64_t timeout_ms);
/* Lines dropped since log_start() in this process (the buffer was full, or fd 2 failed). */
uint64_t log_dropped_lines(void);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                                                             \
	do {                                                                                       \
		if (log_get_level() >= LOG_LVL_DEBUG)                                              \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__);                                       \
	} while (0)

/* The writer thread's name (comm), as top -H and /proc/PID/task/TID/comm show it. */
#define LOG_WRITER_THREAD "td-log"

#endif
