#include "listener.h"
#include "listenfds.h"
#include "log.h"
#include "params.h"
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Keepalive finds a peer that died while the connection was idle; TCP_USER_TIMEOUT one
 * that died with our data unacknowledged (the kernel would otherwise retransmit for
 * tcp_retries2, about 15 minutes). TCP_NODELAY: an echo must not wait for Nagle.
 * Linux creates each accepted socket as a clone of the listener (at the handshake's last
 * ACK), options included, so they are set once, on the listening socket before listen()
 * (no connection can be queued without them): that spares every connection six setsockopt
 * calls (make bench: 14.4 -> 8.4 system calls per connection under churn). */
static int listener_conn_options(const struct server_config *cfg, int lfd)
{
	if (sock_set_nodelay(lfd) < 0)
		return -1;
	if (cfg->keepalive && sock_set_keepalive(lfd, (int)(cfg->keepalive_idle / 1000),
						 (int)(cfg->keepalive_interval / 1000),
						 (int)cfg->keepalive_count) < 0)
		return -1;
	if (cfg->user_timeout > 0 && sock_set_user_timeout(lfd, (unsigned)cfg->user_timeout) < 0)
		return -1;
	return 0;
}

int listener_apply(const struct server_config *cfg, int fd)
{
	/* listener_conn_options only turns mechanisms on: a reload may turn them off. */
	if (!cfg->keepalive && sock_clear_keepalive(fd) < 0)
		return -1;
	if (cfg->user_timeout == 0 && sock_set_user_timeout(fd, 0) < 0)
		return -1;
	if (listener_conn_options(cfg, fd) < 0)
		return -1;
	return listen(fd, (int)cfg->backlog);
}

static int port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static int listener_addr(const struct server_config *cfg, struct sockaddr_storage *ss,
			 socklen_t *len)
{
	char err[256];

	if (sock_parse_hostport(cfg->listen, ss, len, err, sizeof(err)) < 0) {
		log_error("listen %s: %s", cfg->listen, err);
		return -1;
	}
	return 0;
}

int listener_probe(const struct server_config *cfg, int *exit_code)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (listener_addr(cfg, &ss, &len) < 0) {
		*exit_code = 2;
		return -1;
	}
	if (port_of(&ss) == 0) /* any free port: nothing to collide with */
		return 0;
	fd = sock_bind_stream((struct sockaddr *)&ss, len, 0);
	if (fd < 0) {
		*exit_code = sock_listen_exit_code(errno);
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

int listener_open(const struct server_config *cfg, int reuseport, int *exit_code)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (listener_addr(cfg, &ss, &len) < 0) {
		*exit_code = 2;
		return -1;
	}
	fd = sock_bind_stream((struct sockaddr *)&ss, len, reuseport);
	if (fd < 0) {
		*exit_code = sock_listen_exit_code(errno); /* before logging can change errno */
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		return -1;
	}
	if (listener_apply(cfg, fd) < 0) {
		/* EADDRINUSE from listen(): another socket bound the port with SO_REUSEADDR
		 * too and listened first; a port in use, like at bind(). */
		*exit_code = sock_listen_exit_code(errno);
		log_error("listen %s: %s", cfg->listen, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Whether fd is a listening socket on addr (HOST:PORT; port 0: any). 0, or -1 with err. */
static int listener_matches(const char *addr, int fd, char *err, size_t errlen)
{
	struct sockaddr_storage want, got;
	socklen_t len, glen = sizeof(got);

	if (sock_parse_hostport(addr, &want, &len, err, errlen) < 0)
		return -1;
	if (port_of(&want) == 0 && getsockname(fd, (struct sockaddr *)&got, &glen) == 0 &&
	    got.ss_family == want.ss_family)
		sock_set_port(&want, (uint16_t)port_of(&got));
	return listenfds_check(fd, (struct sockaddr *)&want, len, err, errlen);
}

static void listener_adopt_one(const struct server_config *cfg, struct server_params *p, int fd,
			       const char *name)
{
	int metrics = strcmp(name, "metrics") == 0;
	const char *addr = metrics ? cfg->metrics_listen : cfg->listen;
	char err[256];

	if (metrics && (addr[0] == '\0' || p->metrics_fd >= 0)) {
		log_warn("LISTEN_FDS: descriptor %d (%s): %s: closed", fd, name,
			 addr[0] == '\0' ? "metrics_listen is unset" : "a second metrics socket");
	} else if (!metrics && p->nadopted >= (int)(sizeof(p->adopted) / sizeof(p->adopted[0]))) {
		log_warn("LISTEN_FDS: descriptor %d (%s): too many listeners: closed", fd, name);
	} else if (listener_matches(addr, fd, err, sizeof(err)) < 0) {
		log_warn("LISTEN_FDS: %s (%s): not used, closed; the server opens its own", err,
			 name[0] ? name : "unnamed");
	} else if (sock_set_nonblocking(fd) < 0) {
		/* systemd passes blocking sockets; accepting until EAGAIN needs O_NONBLOCK (on the
		 * open file description: the passer's copy is nonblocking too from now on). */
		log_warn("LISTEN_FDS: descriptor %d (%s): O_NONBLOCK: %s: closed", fd, name,
			 strerror(errno));
	} else {
		if (metrics)
			p->metrics_fd = fd;
		else
			p->adopted[p->nadopted++] = fd;
		return;
	}
	close(fd);
}

void listener_adopt(const struct server_config *cfg, struct server_params *p)
{
	struct listenfds lf;
	char err[256];

	if (listenfds_take(&lf, err, sizeof(err)) < 0) {
		log_warn("%s", err);
		return;
	}
	for (int i = 0; i < lf.n; i++)
		listener_adopt_one(cfg, p, lf.fd[i], lf.name[i]);
	if (lf.n > 0)
		log_info("LISTEN_FDS: adopted %d listener%s%s", p->nadopted,
			 p->nadopted == 1 ? "" : "s", p->metrics_fd >= 0 ? " and /metrics" : "");
}
