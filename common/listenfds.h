/* listenfds: listening sockets handed to this process at start, by systemd's socket
 * activation or by an upgrading master, in sd_listen_fds(3)'s convention: LISTEN_PID is
 * the receiving process, LISTEN_FDS the count of descriptors from 3 up, LISTEN_FDNAMES
 * their names separated by ':'. Written here rather than linking libsystemd, for the
 * same protocol with both senders.
 *
 * The variables are removed from the environment whatever they held, so no child of this
 * process takes the descriptors again. */
#ifndef TEARDOWN_LISTENFDS_H
#define TEARDOWN_LISTENFDS_H

#include <stddef.h>
#include <sys/socket.h>

#define LISTENFDS_START 3 /* SD_LISTEN_FDS_START */
#define LISTENFDS_MAX	16

struct listenfds {
	int n;
	int fd[LISTENFDS_MAX];
	char name[LISTENFDS_MAX][64]; /* "" when LISTEN_FDNAMES gave none */
};

/* Takes the passed descriptors (marking them close-on-exec). Returns how many (0 when
 * none were passed), or -1 with a reason in err when the variables are not for this
 * process or cannot be read (LISTEN_PID of another process, LISTEN_FDS not a count, more
 * than LISTENFDS_MAX, a descriptor that is not open): the caller logs it and goes on as
 * if nothing was passed; such descriptors are left alone. */
int listenfds_take(struct listenfds *out, char *err, size_t errlen);

/* Whether fd is a listening TCP socket bound to want's family, address and port. 0, or -1
 * with a reason in err ("not a socket", "not listening", "bound to 127.0.0.1:81, the
 * config says 127.0.0.1:80"). */
int listenfds_check(int fd, const struct sockaddr *want, socklen_t wantlen, char *err,
		    size_t errlen);

#endif
