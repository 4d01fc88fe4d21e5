/* clock: monotonic time for deadlines and latencies (never the wall clock). */
#ifndef TEARDOWN_CLOCK_H
#define TEARDOWN_CLOCK_H

#include <stdint.h>
#include <sys/time.h>

int64_t clock_mono_ns(void);
int64_t clock_mono_us(void);
int64_t clock_mono_ms(void);
/* CPU time of the calling thread (user and system), in microseconds: what a piece of work
 * cost, not how long it waited for a CPU. */
int64_t clock_thread_cpu_us(void);
/* Microseconds to a struct timeval for libevent (negative: zero). */
struct timeval clock_us_to_tv(int64_t us);
/* Milliseconds to a struct timeval for libevent (negative: zero). */
struct timeval clock_ms_to_tv(int64_t ms);

#endif
