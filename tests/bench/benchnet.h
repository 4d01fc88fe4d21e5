/* benchnet.h: what the bench's own C programs (epoll-echo, ev-echo, bev-echo, uv-echo,
 * loadgen) share: an IPv4 HOST:PORT parser, a listening socket with TCP_NODELAY for
 * accepted sockets to inherit, the port file the bench waits for, the servers' common
 * command line, the heap report the bench asks for with SIGUSR1, and the one echo step
 * epoll-echo and ev-echo both run (so the two loops measured against each other do the
 * same work by construction). Header-only (static inline), so each program stays one .c
 * file built by one rule in bench.mk. */
#ifndef TEARDOWN_BENCHNET_H
#define TEARDOWN_BENCHNET_H

#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* What every echo server the bench compares uses alike (its other peers, in Go, Node.js and
 * Python, take the same numbers from tests/bench/peers.py): one read of at most
 * BENCH_READ_SIZE bytes per readiness (echo-server's read_size default), and an accept
 * queue of BENCH_BACKLOG (the kernel caps it at net.core.somaxconn, 4096 by default). */
#define BENCH_READ_SIZE 16384
#define BENCH_BACKLOG	4096

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
	    bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0 ||
	    listen(fd, BENCH_BACKLOG) < 0) {
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

/* The command line the bench's servers take: [--listen HOST:PORT] [--port-file PATH].
 * *listen_s defaults to 127.0.0.1:7100, *port_file to NULL. 0, or -1 after the usage line
 * (the program exits 2). */
static inline int bench_server_args(const char *name, int argc, char **argv, const char **listen_s,
				    const char **port_file)
{
	*listen_s = "127.0.0.1:7100";
	*port_file = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
			*listen_s = argv[++i];
		} else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc) {
			*port_file = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--listen HOST:PORT] [--port-file PATH]\n",
				name);
			return -1;
		}
	}
	return 0;
}

/* bench_server_args, then SIGPIPE ignored and the listening socket (bench_listen); on a
 * bad argument or a failed listen it says why (as `name: ...`) and returns -1, and the
 * program exits 2. */
static inline int bench_server_start(const char *name, int argc, char **argv,
				     const char **port_file)
{
	const char *listen_s;
	struct sockaddr_in sa;
	int fd;

	if (bench_server_args(name, argc, argv, &listen_s, port_file) < 0)
		return -1;
	signal(SIGPIPE, SIG_IGN);
	if (bench_parse_hostport(listen_s, &sa) < 0) {
		fprintf(stderr, "%s: --listen %s: not an IPv4 HOST:PORT\n", name, listen_s);
		return -1;
	}
	fd = bench_listen(&sa);
	if (fd < 0)
		fprintf(stderr, "%s: listen %s: %s\n", name, listen_s, strerror(errno));
	return fd;
}

/* The heap in use, as glibc's allocator counts it (mallinfo2: uordblks, bytes in chunks
 * handed out, plus hblkhd, bytes in mmap'ed chunks: the same sum as echo-server's heap_kb
 * counter), as one line `heap {json}` on stdout, which the bench reads from the server's
 * log after sending SIGUSR1. Called from the event loop, never from a signal handler:
 * mallinfo2 takes the allocator's lock. */
static inline void bench_report_heap(void)
{
	struct mallinfo2 mi = mallinfo2();

	printf("heap {\"uordblks\":%zu,\"hblkhd\":%zu}\n", mi.uordblks, mi.hblkhd);
	fflush(stdout);
}

/* Echo the kernel did not take yet: bytes off..len of buf (buf NULL when empty). */
struct bench_out {
	char *buf;
	size_t off, len;
};

/* One readiness of a connection that is reading: one recv() into buf, sent straight
 * back; what the kernel did not take is copied to *out. 0: done (or nothing to read),
 * 1: *out holds the rest (stop reading until bench_flush empties it), -1: close the
 * connection (EOF, an error, no memory). */
static inline int bench_echo(int fd, char *buf, size_t len, struct bench_out *out)
{
	ssize_t n = recv(fd, buf, len, 0), w;

	if (n == 0)
		return -1;
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	w = send(fd, buf, (size_t)n, MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN && errno != EINTR)
		return -1;
	if (w == n)
		return 0;
	if (w < 0)
		w = 0;
	out->buf = malloc((size_t)(n - w));
	if (out->buf == NULL)
		return -1;
	memcpy(out->buf, buf + w, (size_t)(n - w));
	out->off = 0;
	out->len = (size_t)(n - w);
	return 1;
}

/* Sends what *out holds. 0: all sent (out emptied), 1: some left (wait until writable),
 * -1: close the connection. */
static inline int bench_flush(int fd, struct bench_out *out)
{
	while (out->off < out->len) {
		ssize_t w = send(fd, out->buf + out->off, out->len - out->off, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 1 : -1;
		}
		out->off += (size_t)w;
	}
	free(out->buf);
	out->buf = NULL;
	out->off = out->len = 0;
	return 0;
}

#endif
