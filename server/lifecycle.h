/* lifecycle: a server process's reload (SIGHUP), upgrade (SIGUSR2) and handover to a new
 * generation, and a worker's side of its parent's control socket.
 *
 * Alone (workers=1) the process is its own master: SIGHUP reads the config again
 * (reload.h) and applies it in place, or, when a key that needs new listeners changed
 * (listen, metrics_listen, mode, workers), starts a new generation of itself through the
 * upgrade path, which reads the config itself; SIGUSR2 starts a new generation of the
 * executable (upgrade.h). A worker ignores SIGHUP and SIGUSR2 (systemctl kill signals
 * every process of the unit): its parent decides and tells it (control.h).
 *
 * Handover: once the new generation is ready, this one stops watching its listeners (the
 * new one accepts their queues; nothing here accepts again), serves its established
 * connections until they end or handover_timeout passes, then drains them as SIGTERM does.
 * It keeps its copies of the listening sockets until it exits: should the new generation
 * end meanwhile (a crash after it reported ready), this one watches them again and serves
 * on, with one log line. */
#ifndef TEARDOWN_SERVER_LIFECYCLE_H
#define TEARDOWN_SERVER_LIFECYCLE_H

struct server;

/* In server_init: the signals (alone) or the control socket (a worker). 0 or -1. */
int lifecycle_start(struct server *srv);
void lifecycle_stop(struct server *srv);

#endif
