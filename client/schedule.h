/* schedule: when things are due in an open-loop run (--message-rate, --rate), as pure
 * functions of their inputs, so that a connection and its reconnects, the timeline and the
 * tests all agree on it.
 *
 * A connection's messages are due on its own schedule, which starts at the connection's
 * intended open time (not at its connect: a slow connect is latency the user sees) plus a
 * phase, uniform in [0, 1/R) and a function of the connection's id, so that N connections
 * opened at once do not send in lockstep. Message k is due at
 *   fixed:   start + phase + k / R
 *   poisson: start + phase + g_0 + ... + g_(k-1), each gap g_i exponential with mean 1/R,
 *            a function of (id, i) alone (so a cursor can be copied and replayed).
 * A message is sent when it is due and a pipeline slot is free; its latency is measured
 * from the due time (echo complete minus due), so a stalled server shows up in every
 * message that was due during the stall (coordinated omission, as wrk2 and HdrHistogram's
 * documentation describe it), not only in the one that was in flight. */
#ifndef TEARDOWN_SCHEDULE_H
#define TEARDOWN_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

enum arrivals { ARRIVALS_FIXED, ARRIVALS_POISSON, ARRIVALS_N };

/* "fixed", "poisson"; -1 for any other name. */
int arrivals_parse(const char *s);
const char *arrivals_name(int a);

struct sched {
	double rate; /* messages a second, > 0 */
	int arrivals;
	uint64_t id;	/* the connection's id: its phase and gaps */
	double base_us; /* intended open time + phase (monotonic, microseconds) */
};

/* Message n is due at due_us. */
struct sched_cursor {
	uint64_t n;
	double due_us;
};

/* The phase of connection id at rate R: uniform in [0, 1e6 / R) microseconds. */
double sched_phase_us(double rate, uint64_t id);
/* The gap between messages k and k + 1 of connection id, in microseconds. */
double sched_gap_us(const struct sched *s, uint64_t k);
void sched_init(struct sched *s, double rate, int arrivals, uint64_t id, int64_t start_us);
/* The cursor at message 0. */
void sched_first(const struct sched *s, struct sched_cursor *c);
/* The cursor at the next message. Fixed spacing is computed from the base (no rounding
 * error adds up over a long run); Poisson adds the gap. */
void sched_next(const struct sched *s, struct sched_cursor *c);

/* --stages 10s:1000,30s:5000,10s:0: a target that ramps linearly from `from` (at time 0)
 * to each stage's target over the stage's duration, then holds the last one. */
#define STAGES_MAX 64
struct stages {
	int n;
	int64_t end_ms[STAGES_MAX]; /* the end of each stage, from the start of the run */
	double target[STAGES_MAX];
};

/* Parses "DURATION:TARGET,..." (durations as the other flags take them; targets whole
 * numbers from 0 to max). 0, or -1 with the reason. */
int stages_parse(struct stages *s, const char *text, int64_t max, char *err, size_t errlen);
/* The target at t_ms after the start. */
double stages_at(const struct stages *s, double from, double t_ms);
int64_t stages_total_ms(const struct stages *s);
/* The integral of the target from 0 to t_ms (target x ms): the starts a rate ramp has
 * made due by then, times 1000. */
double stages_area(const struct stages *s, double from, double t_ms);
/* When the integral reaches area (ms), or -1 when it never does (the last target is 0). */
double stages_when(const struct stages *s, double from, double area);
/* The highest target of any stage (and of `from`). */
double stages_max(const struct stages *s, double from);

#endif
