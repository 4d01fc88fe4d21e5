/* epoll-echo: the floor cost of an echo server's system calls, for `make bench`.
 *
 * A minimal, correct, single-threaded echo server on raw epoll, written only as the
 * baseline bin/echo-server is measured against: what any echo server on this kernel must
 * pay per message (one epoll_wait share, one recv, one send) and per connection (accept4,
 * epoll_ctl ADD, close; TCP_NODELAY is inherited from the listener).
 *
 *   epoll-echo [--listen HOST:PORT] [--port-file PATH] [--read-size BYTES]
 *
 * - Level-triggered, nonblocking sockets; one recv() per readiness, like the server.
 * - Echo: what was read is sent straight back; what the kernel did not take is kept in a
 *   per-connection buffer, and reading stops (EPOLLOUT only) until it is flushed, so the
 *   memory per connection stays bounded by one read.
 * - recv()==0: close once the buffer is flushed (at once, usually). Errors: close.
 * - Accept: until EAGAIN; EMFILE/ENFILE: the listener leaves the epoll set for 100 ms.
 * - SIGTERM/SIGINT: exit 0 (closing every socket). SIGPIPE: MSG_NOSIGNAL on every send.
 * - SIGUSR1: a `heap {json}` line on stdout (benchnet.h, bench_report_heap).
 *
 * It has no timers, no keepalive, no counters: those are what bin/echo-server adds on top
 * and what the benchmark's ratio measures. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchnet.h"

#define MAX_EVENTS  256
#define EMFILE_WAIT 100 /* ms the listener is left out of the epoll set after EMFILE */

struct conn {
	struct bench_out out; /* unsent echo; while it is not empty, not reading */
	unsigned char used;
};

static struct conn *conns; /* indexed by fd */
static size_t nconns_cap;
static int epfd = -1;
static volatile sig_atomic_t stop, heap_asked;

static void on_signal(int sig)
{
	if (sig == SIGUSR1)
		heap_asked = 1;
	else
		stop = 1;
}

static int ctl(int op, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.fd = fd};

	return epoll_ctl(epfd, op, fd, &ev);
}

static void conn_close(int fd)
{
	struct conn *c = &conns[fd];

	free(c->out.buf);
	memset(c, 0, sizeof(*c));
	close(fd); /* also removes fd from the epoll set */
}

static int table_fit(int fd)
{
	size_t want = nconns_cap ? nconns_cap : 1024;
	struct conn *t;

	if ((size_t)fd < nconns_cap)
		return 0;
	while (want <= (size_t)fd)
		want *= 2;
	t = realloc(conns, want * sizeof(*t));
	if (t == NULL)
		return -1;
	memset(t + nconns_cap, 0, (want - nconns_cap) * sizeof(*t));
	conns = t;
	nconns_cap = want;
	return 0;
}

/* Returns 1 when the listener should pause (EMFILE/ENFILE), else 0. */
static int accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				return 1;
			if (errno != EAGAIN)
				fprintf(stderr, "epoll-echo: accept4: %s\n", strerror(errno));
			return 0;
		}
		if (table_fit(fd) < 0 || ctl(EPOLL_CTL_ADD, fd, EPOLLIN) < 0) {
			fprintf(stderr, "epoll-echo: new connection: %s\n", strerror(errno));
			close(fd);
			continue;
		}
		conns[fd].used = 1;
	}
}

static void on_writable(int fd)
{
	int r = bench_flush(fd, &conns[fd].out);

	if (r < 0 || (r == 0 && ctl(EPOLL_CTL_MOD, fd, EPOLLIN) < 0))
		conn_close(fd);
}

static void on_readable(int fd, char *buf, size_t len)
{
	int r = bench_echo(fd, buf, len, &conns[fd].out);

	/* 1: the kernel took only part of the echo: stop reading until it is flushed. */
	if (r < 0 || (r == 1 && ctl(EPOLL_CTL_MOD, fd, EPOLLOUT) < 0))
		conn_close(fd);
}

/* EOF while output is queued is seen only after the flush (reading is off until then):
 * the next recv() returns 0 and closes. EPOLLHUP/EPOLLERR reach on_readable or
 * on_writable, whose recv()/send() fails and closes. */
static void dispatch(int lfd, const struct epoll_event *ev, char *buf, size_t len, int *paused)
{
	int fd = ev->data.fd;

	if (fd == lfd) {
		if (accept_all(lfd)) {
			fprintf(stderr, "epoll-echo: accept4: %s: pausing\n", strerror(errno));
			if (epoll_ctl(epfd, EPOLL_CTL_DEL, lfd, NULL) == 0)
				*paused = 1;
		}
		return;
	}
	if (!conns[fd].used)
		return;
	if (conns[fd].out.buf != NULL)
		on_writable(fd);
	else
		on_readable(fd, buf, len);
}

static int run(int lfd, size_t read_size)
{
	struct epoll_event evs[MAX_EVENTS];
	char *buf = malloc(read_size);
	int paused = 0;

	if (buf == NULL || ctl(EPOLL_CTL_ADD, lfd, EPOLLIN) < 0)
		return 1;
	while (!stop) {
		int n;

		if (heap_asked) {
			heap_asked = 0;
			bench_report_heap();
		}
		n = epoll_wait(epfd, evs, MAX_EVENTS, paused ? EMFILE_WAIT : -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "epoll-echo: epoll_wait: %s\n", strerror(errno));
			return 1;
		}
		if (paused && ctl(EPOLL_CTL_ADD, lfd, EPOLLIN) == 0)
			paused = 0;
		for (int i = 0; i < n; i++)
			dispatch(lfd, &evs[i], buf, read_size, &paused);
	}
	free(buf);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: epoll-echo [--listen HOST:PORT] [--port-file PATH] "
			"[--read-size BYTES]\n");
}

int main(int argc, char **argv)
{
	const char *listen_s = "127.0.0.1:7100", *port_file = NULL;
	long read_size = BENCH_READ_SIZE;
	struct sockaddr_in sa;
	struct sigaction act = {.sa_handler = on_signal};
	int lfd, rc;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
			listen_s = argv[++i];
		else if (strcmp(argv[i], "--port-file") == 0 && i + 1 < argc)
			port_file = argv[++i];
		else if (strcmp(argv[i], "--read-size") == 0 && i + 1 < argc)
			read_size = strtol(argv[++i], NULL, 10);
		else {
			usage();
			return 2;
		}
	}
	if (read_size < 1 || read_size > (1 << 24) || bench_parse_hostport(listen_s, &sa) < 0) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);
	sigaction(SIGUSR1, &act, NULL); /* no SA_RESTART: epoll_wait returns EINTR at once */
	lfd = bench_listen(&sa);
	if (lfd < 0) {
		fprintf(stderr, "epoll-echo: listen %s: %s\n", listen_s, strerror(errno));
		return 2;
	}
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0 || (port_file != NULL && bench_write_port_file(port_file, lfd) < 0)) {
		fprintf(stderr, "epoll-echo: start: %s\n", strerror(errno));
		return 1;
	}
	rc = run(lfd, (size_t)read_size);
	for (size_t fd = 0; fd < nconns_cap; fd++)
		if (conns[fd].used)
			conn_close((int)fd);
	free(conns);
	close(lfd);
	close(epfd);
	return rc;
}
