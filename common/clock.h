/* clock: monotonic time for deadlines and latencies (never the wall clock). */
#ifndef TEARDOWN_CLOCK_H
#define TEARDOWN_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

int64_t clock_mono_ns(void);
int64_t clock_mono_us(void);
int64_t clock_mono_ms(void);
/* CLOCK_MONOTONIC_COARSE in microseconds: the time of the last clock tick, so up to
 * clock_coarse_res_us() behind CLOCK_MONOTONIC, never ahead of it; a few ns to read
 * (no hardware clock access), cheap enough to stamp every message. */
int64_t clock_coarse_us(void);
/* The coarse clock's resolution (one tick: 4000 us at HZ=250), read once. */
int64_t clock_coarse_res_us(void);
/* Microseconds to a struct timeval for libevent (negative: zero). */
struct timeval clock_us_to_tv(int64_t us);
/* Milliseconds to a struct timeval for libevent. */
struct timeval clock_ms_to_tv(int64_t ms);

#endif
