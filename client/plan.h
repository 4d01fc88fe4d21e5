/* plan: what each worker of a run does, computed once from the options before the workers
 * start, so that no layer works it out again (the driver, the crash ports' one-pass check,
 * the fd check of run.c).
 *
 * The run's `connections` are the concurrent slots, shared out between the P workers of
 * --procs (plan_share: the first connections % P workers have one more). Worker w numbers
 * its connections k = 0, 1, ... in the order it opens them; connection k's id is
 * w + P * k, so ids are unique across workers and the bytes of a connection (its pattern)
 * and its source address are functions of its id. Its scenario is the mix's smooth round
 * robin over the worker's own connections (k), or, with several --sources and a mix of
 * several, over those of its source address; picked by the id alone, worker w would see
 * only the mix's entries w, w + P, ... and a source address only some scenarios.
 *
 * Each connection's plan (struct plan_conn) says what it runs: its id, scenario, messages
 * and how long it is held. It is the place for a per-connection schedule. */
#ifndef TEARDOWN_PLAN_H
#define TEARDOWN_PLAN_H

#include "options.h"
#include "scenario.h"

#include <stdint.h>

struct plan {
	int nworkers;
	uint64_t connections;
	int scenario; /* as asked: one of the scenarios, or SCEN_MIXED */
	struct mix mix;
	/* --sources (host byte order), crash's own address already taken out (options.c) */
	uint32_t src_first;
	int nsources;	       /* 0: the kernel chooses */
	int mix_per_source;    /* the mix is dealt per source address */
	uint64_t messages;     /* of a connection that does not run until the run ends */
	int endless_echo;      /* echo alone with --duration: messages until the run ends */
	int64_t hold_ms;       /* a held connection's hold, when it does not last the run */
	int hold_whole_run;    /* held ones (idle, silent, vanish) are held until the run ends */
	double rate;	       /* new connections a second per worker; 0: unlimited */
	double reconnect_rate; /* reconnects a second per worker; 0: unlimited */
	double msg_rate;       /* open loop: messages a second per connection; 0: closed loop */
	int arrivals;	       /* enum arrivals (client/schedule.h) */
	const struct stages *stages;	  /* --stages (NULL: the connections throughout) */
	const struct stages *rate_stages; /* --rate-stages (NULL: --rate throughout) */
};

/* What one connection runs. */
struct plan_conn {
	uint64_t id;	   /* unique in the run: worker + P * k */
	int scenario;	   /* enum scenario */
	uint64_t messages; /* to send; UINT64_MAX: until the run (or its hold) ends */
	int64_t hold_ms;   /* held scenarios: how long once established; 0: until the run ends */
	/* Open loop (client/schedule.h): its messages' rate (0: closed loop; held scenarios
	 * keep their own pace) and spacing. */
	double msg_rate;
	int arrivals;
	/* When it is meant to open (monotonic us): the --rate schedule's time for it, else
	 * when its slot was free. Its messages' schedule and its connect latency count from
	 * here. Set by the driver when it opens the connection. */
	int64_t start_us;
};

/* One worker's sequence of connections. */
struct plan_worker {
	const struct plan *p;
	int worker;
	uint64_t next;	   /* k of its next connection */
	uint64_t *src_mix; /* [nsources] the mix's place per source address, or NULL */
};

void plan_init(struct plan *p, const struct client_opts *o);
/* The number of slots of worker w of W for n connections. */
uint64_t plan_share(uint64_t n, int worker, int nworkers);
/* Worker w's concurrent slots. */
uint64_t plan_slots(const struct plan *p, int worker);
/* Worker w's share of the --stages target at t_ms from the start (its slots without). */
uint64_t plan_target(const struct plan *p, int worker, double t_ms);
/* Whether the run holds connections of scenario s. */
int plan_runs(const struct plan *p, int s);
/* The source address (network byte order) of connection `id`; only with --sources. */
uint32_t plan_source(const struct plan *p, uint64_t id);

/* Worker w's sequence from its first connection. 0, or -1 when out of memory. */
int plan_worker_init(struct plan_worker *w, const struct plan *p, int worker);
void plan_worker_free(struct plan_worker *w);
/* The worker's next connection. */
void plan_next(struct plan_worker *w, struct plan_conn *c);

#endif
