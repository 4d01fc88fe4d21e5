/* listener: the echo port's listening socket, opened once and kept by the process that
 * owns it (the workers' parent, or a lone server), and the options set on it.
 *
 * Linux clones each accepted socket from its listener at the handshake's last ACK, options
 * included, so the options set here reach new connections only; listen() on a socket that
 * already listens only changes its backlog (inet_listen), so a reload or an adopted socket
 * takes the configured backlog in place, with its queue intact. */
#ifndef TEARDOWN_SERVER_LISTENER_H
#define TEARDOWN_SERVER_LISTENER_H

#include "config.h"

/* Binds cfg->listen (SO_REUSEADDR; SO_REUSEPORT when reuseport, for the workers' sockets),
 * sets the options and listens. The fd, or -1 after logging with *exit_code set (2 when
 * the config must change, 1 otherwise; untouched on success). */
int listener_open(const struct server_config *cfg, int reuseport, int *exit_code);
/* SO_REUSEPORT lets any process of the same user join a port's group, so a second server
 * with workers > 1 would start and the kernel would split new connections between the
 * two. Before the workers' sockets are opened, a plain bind (SO_REUSEADDR only, which still
 * ignores TIME_WAIT) must succeed; it is closed again. 0, or -1 after logging (*exit_code).
 * Not for adopted sockets: they are the ones listening there. */
int listener_probe(const struct server_config *cfg, int *exit_code);
/* Sets the options cfg asks for on a listening socket, turning off those it no longer
 * asks for (keepalive, user_timeout), and listen()s again with cfg->backlog. 0, or -1
 * with errno. */
int listener_apply(const struct server_config *cfg, int fd);

struct server_params;

/* At start: takes the sockets passed in LISTEN_FDS (listenfds.h: an upgrading parent, or
 * systemd's socket activation), checks each against the config (a listening TCP socket
 * bound to cfg->listen, or to cfg->metrics_listen when its name is "metrics"; a port 0 in
 * the config matches any port) and puts the good ones into p->adopted and p->metrics_fd.
 * A socket that fails a check, and anything wrong with the variables, is one warning line
 * and the socket is closed: the server then opens its own as without LISTEN_FDS. */
void listener_adopt(const struct server_config *cfg, struct server_params *p);

#endif
