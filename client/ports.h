/* ports: the (source address, port) pairs a run's connections used, shared by its --procs
 * workers, so the client census counts this run's sockets only. Every socket of the
 * namespace whose remote port is the server's would include what earlier runs left
 * (TIME_WAIT lasts 60 s) and other clients of that port. A socket is the run's when its
 * remote address is the server's and its (local address, local port) is in the set: the
 * kernel gives a 4-tuple to one connection at a time (a TIME_WAIT of another run on it
 * keeps connect() off that port, or is taken over and gone).
 *
 * The set is one bitmap of the 65536 ports per source address the run can use: each
 * --sources address, the crash source, and the address the kernel routes from towards the
 * server (connections with no source of their own). In shared memory reserved, not
 * committed: a source's 8 KiB only when one of its ports is set or looked up. */
#ifndef TEARDOWN_CLIENT_PORTS_H
#define TEARDOWN_CLIENT_PORTS_H

#include "census.h"
#include "options.h"

#include <stdint.h>

struct own_ports;

/* Before the workers are forked, so they fill the same set. NULL with errno. */
struct own_ports *own_ports_alloc(const struct client_opts *o);
void own_ports_free(struct own_ports *p);
/* Adds fd's local address and port (getsockname). Safe from several processes at once. */
void own_ports_add_fd(struct own_ports *p, int fd);
/* Whether census socket s is one of the run's (its remote address is the server's). */
int own_ports_sock_ours(const struct own_ports *p, const struct census_sock_info *s);

#endif
