/* driver: one process's share of a run, on its own event_base with raw events.
 *
 * Worker w runs its share of the plan (client/plan.h): its slots and its connections.
 * Without --duration each slot runs one connection (one pass); with it, a slot whose
 * connection ended opens the next one (after --backoff when it failed) until the duration
 * is over, then every connection finishes its scenario's ending and the driver returns.
 * New connections are paced by the --rate schedule (split between workers: connection k
 * of a worker is due at its start + k / rate; a start missed while no slot was free is
 * made late and counted, never dropped) and by --max-connecting handshakes in flight.
 * With a schedule (--rate, --message-rate) the loop runs on a precise timer.
 *
 * SIGINT/SIGTERM: the first one ends the run like the end of --duration; a second one
 * exits at once with status 1. */
#ifndef TEARDOWN_DRIVER_H
#define TEARDOWN_DRIVER_H

#include "crashport.h"
#include "options.h"
#include "plan.h"
#include "ports.h"
#include "result.h"

/* Called about once a second from the driver's loop (progress, timeline): returns the
 * microseconds until it wants to be called again. May be NULL. */
typedef int64_t (*driver_tick_fn)(void *arg);

/* What every worker of a run is handed, prepared by the parent before they start. */
struct driver_params {
	const struct client_opts *o;
	const struct plan *plan;
	const struct crashport_plan *crash; /* crash in the mix: its ports' preparation */
	struct own_ports *ports;	    /* NULL: not recorded */
	driver_tick_fn tick;		    /* may be NULL */
	void *tick_arg;
	int64_t tick_first_us; /* when the first tick is due, from the start */
};

/* Worker w's share of the run; fills r (already initialised). 0, or 1 when the run could
 * not be made at all (the reason was logged). */
int driver_run(const struct driver_params *p, int worker, struct result *r);

#endif
