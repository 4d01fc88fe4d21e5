#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <linux/sockios.h> /* SIOCOUTQ */
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

static int sock_set_int(int fd, int level, int opt, int value)
{
	return setsockopt(fd, level, opt, &value, sizeof(value));
}

int sock_set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags < 0)
		return -1;
	if (flags & O_NONBLOCK)
		return 0;
	return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int sock_set_reuseaddr(int fd)
{
	return sock_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1);
}

int sock_set_reuseport(int fd)
{
	return sock_set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1);
}

int sock_set_keepalive(int fd, int idle_s, int interval_s, int count)
{
	if (sock_set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s) < 0)
		return -1;
	if (sock_set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_s) < 0)
		return -1;
	if (sock_set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, count) < 0)
		return -1;
	return sock_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
}

int sock_clear_keepalive(int fd)
{
	return sock_set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 0);
}

int sock_set_user_timeout(int fd, unsigned ms)
{
	return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

int sock_set_linger_reset(int fd)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};

	return setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

int sock_set_nodelay(int fd)
{
	return sock_set_int(fd, IPPROTO_TCP, TCP_NODELAY, 1);
}

int sock_set_quickack(int fd)
{
	return sock_set_int(fd, IPPROTO_TCP, TCP_QUICKACK, 1);
}

int sock_set_repair(int fd, int on)
{
	return sock_set_int(fd, IPPROTO_TCP, TCP_REPAIR, on ? 1 : 0);
}

int sock_set_bind_no_port(int fd)
{
	return sock_set_int(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1);
}

/* Splits "host:port" / "[v6]:port" in place. Returns 0 or -1 with a reason. */
static int split_hostport(char *s, char **host, char **port, char *err, size_t errlen)
{
	char *colon;

	if (s[0] == '[') {
		char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "expected [IPv6]:PORT");
			return -1;
		}
		*close = '\0';
		*host = s + 1;
		*port = close + 2;
		return 0;
	}
	colon = strrchr(s, ':');
	if (colon == NULL) {
		snprintf(err, errlen, "expected HOST:PORT");
		return -1;
	}
	*colon = '\0';
	*host = s;
	*port = colon + 1;
	return 0;
}

static int parse_port(const char *p, char *err, size_t errlen)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(p, &end, 10);
	if (*p == '\0' || *end != '\0' || errno != 0 || v < 0 || v > 65535 || *p == '-' ||
	    *p == '+' || *p == ' ') {
		snprintf(err, errlen, "port must be a number from 0 to 65535");
		return -1;
	}
	return (int)v;
}

int sock_parse_hostport(const char *s, struct sockaddr_storage *ss, socklen_t *len, char *err,
			size_t errlen)
{
	struct addrinfo hints, *res = NULL;
	char buf[300], *host, *port;
	int rc, portnum;

	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, errlen, "address too long");
		return -1;
	}
	strcpy(buf, s);
	if (split_hostport(buf, &host, &port, err, errlen) < 0)
		return -1;
	portnum = parse_port(port, err, errlen);
	if (portnum < 0)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return -1;
	}
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int sock_route_source(const struct sockaddr *dst, socklen_t dstlen, struct sockaddr_storage *src,
		      socklen_t *srclen)
{
	int fd = socket(dst->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0), e;

	if (fd < 0)
		return -1;
	*srclen = sizeof(*src);
	if (connect(fd, dst, dstlen) < 0 || getsockname(fd, (struct sockaddr *)src, srclen) < 0) {
		e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	sock_set_port(src, 0);
	return 0;
}

void sock_set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

int sock_bind_check(const struct sockaddr_storage *ss, socklen_t len)
{
	struct sockaddr_storage a = *ss;
	int fd = socket(a.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return errno;
	sock_set_port(&a, 0);
	/* No ephemeral port taken for the check where the option exists (best effort). */
	(void)sock_set_bind_no_port(fd);
	if (bind(fd, (struct sockaddr *)&a, len) < 0)
		err = errno;
	close(fd);
	return err;
}

int sock_bind_stream(const struct sockaddr *sa, socklen_t len, int reuseport)
{
	int fd, saved;

	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (sock_set_reuseaddr(fd) < 0)
		goto fail;
	if (reuseport && sock_set_reuseport(fd) < 0)
		goto fail;
	if (bind(fd, sa, len) < 0)
		goto fail;
	return fd;
fail:
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int sock_listen(const struct sockaddr *sa, socklen_t len, int backlog, int reuseport)
{
	int fd = sock_bind_stream(sa, len, reuseport), saved;

	if (fd < 0 || listen(fd, backlog) == 0)
		return fd;
	saved = errno;
	close(fd);
	errno = saved;
	return -1;
}

int sock_errno_transient(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

int sock_accept_retry(int err)
{
	return err == EINTR || err == ECONNABORTED || err == EPROTO;
}

int sock_accept_exhausted(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

int sock_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	errno = EAFNOSUPPORT;
	return -1;
}

const char *sock_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "?");
	}
	return buf;
}

int sock_send_queue(int fd, int *queued, int *bufsize)
{
	socklen_t len = sizeof(*bufsize);

	if (ioctl(fd, SIOCOUTQ, queued) < 0)
		return -1;
	return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, bufsize, &len);
}

int sock_listen_exit_code(int err)
{
	return err == EADDRINUSE || err == EADDRNOTAVAIL || err == EACCES ? 2 : 1;
}

int sock_is_reuseport(int fd)
{
	int v = 0;
	socklen_t len = sizeof(v);

	return getsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0 && v;
}
