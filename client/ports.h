/* ports: the local ports a run's connections used, shared by its --procs workers, so the
 * client census counts this run's sockets only. Every socket of the namespace whose
 * remote port is the server's would include what earlier runs left (TIME_WAIT lasts 60 s)
 * and other clients of that port. A socket is the run's when its local port is in the set
 * and its remote address is the server's: the kernel gives a port to one connection
 * towards that server address and port at a time (a TIME_WAIT of another run on it keeps
 * connect() off that port, or is taken over and gone). */
#ifndef TEARDOWN_CLIENT_PORTS_H
#define TEARDOWN_CLIENT_PORTS_H

#include "census.h"

#include <stdint.h>
#include <sys/socket.h>

struct own_ports {
	unsigned char bit[65536 / 8];
};

/* In shared memory, so workers forked after it fill the same set. NULL with errno. */
struct own_ports *own_ports_alloc(void);
void own_ports_free(struct own_ports *p);
/* Adds fd's local port (getsockname). Safe from several processes at once. */
void own_ports_add_fd(struct own_ports *p, int fd);
void own_ports_add(struct own_ports *p, uint16_t port);
int own_ports_has(const struct own_ports *p, uint16_t port);
/* Whether socket s is one of the run's: its local port is in p, its remote address is
 * server's (a census_keep_fn with the arguments bundled). */
int own_ports_sock_ours(const struct own_ports *p, const struct sockaddr_storage *server,
			const struct census_sock_info *s);

#endif
