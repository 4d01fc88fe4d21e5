/* looplag: how late the event loop runs, measured from inside it.
 *
 * A timer asks to ring every LOOPLAG_PERIOD_MS; each ring compares a fresh CLOCK_MONOTONIC
 * read with the time it was due (not libevent's cached, coarse clock, which lags by
 * milliseconds and would hide part of the lateness). The lateness goes into
 * stats.loop_lag_us (teardown_event_loop_lag_seconds) and stats.loop_lag_max_us (the
 * counters line). A stall over LOOPLAG_WARN_MS is logged once, when the loop runs again,
 * naming the heavy callback that was running (the ones that time themselves with
 * looplag_note: the census tick, a /metrics render), or saying none was seen: then the
 * process was stopped (SIGSTOP, a VM pause) or starved of CPU. */
#ifndef TEARDOWN_SERVER_LOOPLAG_H
#define TEARDOWN_SERVER_LOOPLAG_H

#include <stdint.h>

struct event_base;
struct stats;
struct looplag;

/* Starts the timer; the figures go into *stats. NULL after logging when it cannot run. */
struct looplag *looplag_start(struct event_base *base, struct stats *stats);
void looplag_stop(struct looplag *l);
/* A heavy callback that started at start_us (clock_mono_us) is ending: how long it ran is
 * kept until the next ring, so a stall can be blamed on it. what: a static string. l may
 * be NULL (nothing is kept). */
void looplag_note(struct looplag *l, const char *what, int64_t start_us);

#endif
