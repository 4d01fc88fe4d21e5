/* driver: one process's share of a run, on its own event_base with raw events.
 *
 * Worker w of W owns the connection ids w, w + W, w + 2W, ... and ceil-or-floor of
 * connections / W concurrent slots. Without --duration each slot runs one connection
 * (one pass); with it, a slot whose connection ended opens the next one (after --backoff
 * when it failed) until the duration is over, then every connection finishes its
 * scenario's ending and the driver returns. New connections are paced by a token bucket
 * (--rate, split between workers) and by --max-connecting handshakes in flight.
 *
 * SIGINT/SIGTERM: the first one ends the run like the end of --duration; a second one
 * exits at once with status 1. */
#ifndef TEARDOWN_DRIVER_H
#define TEARDOWN_DRIVER_H

#include "options.h"
#include "ports.h"
#include "result.h"

/* Called once a second from the driver's loop (progress, timeline); may be NULL. */
typedef void (*driver_tick_fn)(void *arg);

/* Fills r (already initialised). 0, or 1 when the run could not be made at all (the
 * reason was logged). */
int driver_run(const struct client_opts *o, int worker, int nworkers, struct result *r,
	       struct own_ports *ports, driver_tick_fn tick, void *tick_arg);

/* The number of slots of worker w of W for n connections. */
uint64_t driver_share(uint64_t n, int worker, int nworkers);

#endif
