/* looplag: the event loop's lateness (see looplag.h). */
#include "looplag.h"
#include "clock.h"
#include "log.h"
#include "stats.h"

#include <errno.h>
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

/* How often the loop's lateness is sampled: often enough that a stall of a tenth of a
 * second shows, rarely enough to cost nothing (ten event_adds per second). */
#define LOOPLAG_PERIOD_MS 100
/* A stall this long is worth a warning: shorter lateness is scheduling noise on a loaded
 * machine, and a second is the shortest heartbeat_timeout the config accepts without a
 * warning of its own (server/config.c), so a shorter stall cannot have misjudged one. */
#define LOOPLAG_WARN_MS 1000

struct looplag {
	struct event *ev;
	struct stats *stats;
	int64_t due_us;	     /* when the timer should ring (CLOCK_MONOTONIC) */
	const char *slowest; /* the longest heavy callback since the last ring, or NULL */
	int64_t slowest_us;
};

static void looplag_on_tick(evutil_socket_t fd, short what, void *arg);

/* Arms the next ring. The timer is not EV_PERSIST: libevent would schedule the next ring
 * from its own coarse clock; here the due time and the measure use the same clock. */
static int looplag_arm(struct looplag *l, int64_t now_us)
{
	struct timeval tv = clock_ms_to_tv(LOOPLAG_PERIOD_MS);

	l->due_us = now_us + LOOPLAG_PERIOD_MS * 1000;
	return evtimer_add(l->ev, &tv);
}

static void looplag_warn(const struct looplag *l, int64_t late_us)
{
	/* The callback is blamed only when it accounts for most of the stall. */
	if (l->slowest != NULL && l->slowest_us * 2 >= late_us)
		log_warn("event loop stalled: a %dms timer rang %lldms late; the callback that "
			 "was running: %s (%lldms)",
			 LOOPLAG_PERIOD_MS, (long long)(late_us / 1000), l->slowest,
			 (long long)(l->slowest_us / 1000));
	else
		log_warn("event loop stalled: a %dms timer rang %lldms late; the callback that "
			 "was running: none seen: the process was stopped or starved",
			 LOOPLAG_PERIOD_MS, (long long)(late_us / 1000));
}

static void looplag_on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct looplag *l = arg;
	int64_t now = clock_mono_us();
	/* libevent's coarse clock can ring a few ms early: that is no lateness. */
	int64_t late = now > l->due_us ? now - l->due_us : 0;

	(void)fd;
	(void)what;
	hist_record(&l->stats->loop_lag_us, (uint64_t)late);
	if ((uint64_t)late > l->stats->loop_lag_max_us)
		l->stats->loop_lag_max_us = (uint64_t)late;
	if (late > LOOPLAG_WARN_MS * 1000)
		looplag_warn(l, late);
	l->slowest = NULL;
	l->slowest_us = 0;
	if (looplag_arm(l, now) < 0)
		log_warn("loop lag timer: cannot re-arm it: %s (loop lag no longer measured)",
			 strerror(errno));
}

struct looplag *looplag_start(struct event_base *base, struct stats *stats)
{
	struct looplag *l = calloc(1, sizeof(*l));

	if (l == NULL)
		goto fail;
	l->stats = stats;
	l->ev = evtimer_new(base, looplag_on_tick, l);
	if (l->ev == NULL || looplag_arm(l, clock_mono_us()) < 0)
		goto fail;
	return l;
fail:
	log_warn("loop lag timer: %s (loop lag not measured)", strerror(errno ? errno : ENOMEM));
	looplag_stop(l);
	return NULL;
}

void looplag_stop(struct looplag *l)
{
	if (l == NULL)
		return;
	if (l->ev != NULL)
		event_free(l->ev);
	free(l);
}

void looplag_note(struct looplag *l, const char *what, int64_t start_us)
{
	int64_t took = clock_mono_us() - start_us;

	if (l != NULL && took > l->slowest_us) {
		l->slowest = what;
		l->slowest_us = took;
	}
}
