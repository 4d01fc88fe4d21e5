/* benchnet.h: what the bench's own programs (epoll-echo, bev-echo, loadgen) share: an
 * IPv4 HOST:PORT parser, a listening socket with TCP_NODELAY for accepted sockets to
 * inherit, and the port file the bench waits for. Header-only (static inline), so each
 * program stays one .c file built by one rule in bench.mk. */
#ifndef TEARDOWN_BENCHNET_H
#define TEARDOWN_BENCHNET_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* "A.B.C.D:PORT" (port 0..65535) into sa. 0, or -1. */
static inline int bench_parse_hostport(const char *s, struct sockaddr_in *sa)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port < 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* A nonblocking listening socket on sa. TCP_NODELAY is set on the listener: accepted
 * sockets inherit it (Linux clones the listener's socket for each connection), so accept
 * costs no setsockopt. The fd, or -1 with errno. */
static inline int bench_listen(const struct sockaddr_in *sa)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 || listen(fd, 4096) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* The listener's port, written to path (through path.tmp and a rename, so a reader never
 * sees a partial file). 0, or -1. */
static inline int bench_write_port_file(const char *path, int lfd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char tmp[4096];
	FILE *f;
	int bad;

	if (getsockname(lfd, (struct sockaddr *)&sa, &len) < 0)
		return -1;
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	bad = fprintf(f, "%d\n", ntohs(sa.sin_port)) < 0;
	if (fclose(f) != 0 || bad) {
		unlink(tmp);
		return -1;
	}
	return rename(tmp, path);
}

#endif
