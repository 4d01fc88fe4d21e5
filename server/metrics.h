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

#include "config.h"

#include <stddef.h>

#define METRICS_REQ_MAX 8192

struct server;
struct server_params;
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

/* In server_init: opens (alone: on srv->params.metrics_port_file) or takes over (worker 0:
 * srv->params.metrics_fd) the endpoint in the process that serves it; other workers close
 * their inherited copy. 0, or -1 after logging with *exit_code set. */
int metrics_start(struct server *srv, int *exit_code);
void metrics_stop(struct server *srv);
/* 1 when this process serves the endpoint (so it reports port-wide figures). */
int metrics_serving(const struct server *srv);
/* Called by server.c after every accept and close: with workers, puts this worker's
 * connection counts into its slot at once (a few words; nothing per message). */
void metrics_count(const struct server *srv);
/* Called by the watchdog after each census: with workers, publishes this worker's
 * figures for worker 0. */
void metrics_publish(struct server *srv);
/* Sets mark[fd] = 1 for the endpoint's fds below n (listener, clients, /proc handles). */
void metrics_mark_fds(const struct server *srv, unsigned char *mark, size_t n);

/* The endpoint's listening socket (an upgrade passes it on), or -1. */
int metrics_listener_fd(const struct server *srv);
/* on: a new generation serves the listener, which is no longer watched (the clients being
 * answered are); off: it is watched again (that generation is gone). */
void metrics_handover(struct server *srv, int on);

#endif
