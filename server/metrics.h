/* metrics: the Prometheus endpoint on `metrics_listen` (HOST:PORT; off when unset; ":PORT"
 * means 127.0.0.1:PORT). GET (or HEAD) /metrics answers the text format 0.0.4
 * (metrics_text.c); other paths 404, other methods 405, anything not HTTP/1.x 400 (505 for
 * another major version). Every response closes the connection: the server sends its FIN,
 * reads what the client still sends until its EOF, then closes (so a request body never
 * turns the close into an RST that would destroy the response).
 *
 * The endpoint shares the echo server's event loop, so a bad metrics client must cost it
 * nothing: at most metrics_max_clients connections at once (at the limit the listener is
 * not watched until one closes, so more scrapers wait in the kernel's backlog instead of
 * being reset), a request head of at most METRICS_REQ_MAX bytes within
 * metrics_request_timeout of the accept (a slowloris is cut off), metrics_exchange_timeout
 * from accept to close (a client that never reads the answer or never closes), garbage
 * answered 400 as soon as it is seen, and a scrape never runs a census or scans fds itself:
 * it reports what the watchdog measured at its last census (every census_interval).
 *
 * Workers: the endpoint lives in worker 0 and reports the sum of every worker. The parent
 * opens the metrics listener before forking (a restarted worker 0 takes over the same
 * socket, port 0 included) and maps shared memory (slots.h) where each worker counts every
 * accept and close at once and publishes its other figures at every census. The counters
 * of a worker that died are kept, and the connections it had open are counted as lost:
 * accepted = closed + lost + open at every scrape. Port-wide figures (the census of the port, the
 * kernel's per-namespace counters) are measured once, by worker 0, never summed over workers. */
#ifndef TEARDOWN_SERVER_METRICS_H
#define TEARDOWN_SERVER_METRICS_H

#include "census.h"
#include "config.h"
#include "figures.h"
#include "params.h"
#include "stats.h"

#include <stddef.h>

#define METRICS_REQ_MAX 8192

struct event_base;
struct looplag;
struct metrics;
struct slots;

/* workers > 1, in the parent before forking, into the parameters every worker starts with:
 * the shared figures (p->slots, always), the listener (p->metrics_fd, whose port goes to
 * p->metrics_port_file) and the kernel counters' baseline (p->kbase) when metrics_listen
 * is set. 0, or -1 after logging with *exit_code (2: address problem, 1: other). */
int metrics_prefork(const struct server_config *cfg, int nworkers, struct server_params *p,
		    int *exit_code);
/* In the parent, once worker `index` is reaped and before its replacement is forked: its
 * counters are kept, its open connections become lost, its gauges are dropped. */
void metrics_worker_exited(struct slots *slots, int index);
/* In the parent: logs "total counters {json}", the sum over every worker (lost included). */
void metrics_log_total(struct slots *slots);

/* What the endpoint works with: the server's event loop, config, live counters (read at
 * each scrape) and loop-lag meter (may be NULL). */
struct metrics_env {
	struct event_base *base;
	const struct server_config *cfg;
	const struct stats *stats;
	struct looplag *lag;
};

/* In server_init: opens (alone: its port goes to p->metrics_port_file) or takes over
 * (worker 0: p->metrics_fd, then -1) the endpoint in the process that serves it; other
 * workers close their inherited copy. *out is the endpoint, NULL when this process serves
 * none. 0, or -1 after logging with *exit_code set (*out, when set, is for metrics_stop). */
int metrics_start(struct metrics **out, const struct metrics_env *env, struct server_params *p,
		  int *exit_code);
/* Closes the endpoint and its connections; m may be NULL. */
void metrics_stop(struct metrics *m);
/* The server, after each census and fd count: what its watchdog measured (NULL: not
 * measured), reported at the next scrapes. m may be NULL. */
void metrics_publish(struct metrics *m, const struct watchdog_fds *fds,
		     const struct watchdog_close_wait *cw, const struct census_counts *census);
/* Sets mark[fd] = 1 for the endpoint's fds below n (listener, clients, /proc handles): the
 * server's answer to its watchdog's question about its own fds. m may be NULL. */
void metrics_mark_fds(const struct metrics *m, unsigned char *mark, size_t n);

/* The endpoint's listening socket (an upgrade passes it on), or -1. m may be NULL. */
int metrics_listener_fd(const struct metrics *m);
/* on: a new generation serves the listener, which is no longer watched (the clients being
 * answered are); off: it is watched again (that generation is gone). m may be NULL. */
void metrics_handover(struct metrics *m, int on);

#endif
