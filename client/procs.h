/* procs: --procs P forks P workers, each running its share of the run on its own
 * event_base (driver.c) and writing its result into memory shared with the parent, so
 * the parent merges exact results (no serialisation) and reads live progress.
 *
 * Each worker holds a pipe whose end the parent watches: EOF means that worker is gone.
 * The parent forwards the first SIGINT/SIGTERM as SIGTERM to the workers (they finish
 * their connections); a second one kills them and exits with status 1. */
#ifndef TEARDOWN_PROCS_H
#define TEARDOWN_PROCS_H

#include "driver.h"
#include "monitor.h"

/* Runs the plan's P workers, each with the parameters dp (without its tick: the parent's
 * loop calls monitor_tick(m)); results: P results in shared memory (procs_alloc). 0 when
 * every worker exited 0. */
int procs_run(const struct driver_params *dp, struct result *results, struct monitor *m);
/* P initialised results in MAP_SHARED anonymous memory, or NULL. */
struct result *procs_alloc(int n);
void procs_free(struct result *results, int n);

#endif
