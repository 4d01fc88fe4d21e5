/* ev-echo: epoll-echo's loop on libevent, for `make bench` only.
 *
 * The same echo as tests/bench/epoll-echo.c (level-triggered, one recv() per readiness,
 * send straight back, what the kernel does not take kept and reading stopped until it is
 * flushed, close on recv()==0 or error), but dispatched by a libevent event_base with one
 * raw event per connection. It has no timers, no counters, no EV_CLOSED: measured beside
 * epoll-echo and bin/echo-server, it splits echo-server's cost over the raw loop into what
 * libevent's dispatch costs (ev-echo / epoll-echo) and what echo-server's closing machinery
 * costs on top of it (echo-server / ev-echo).
 *
 *   ev-echo [--listen HOST:PORT] [--port-file PATH]
 *
 * Accept until EAGAIN; EMFILE and the like: the listener is disabled for 100 ms.
 * SIGTERM/SIGINT: exit 0. SIGUSR1: a `heap {json}` line on stdout (bench_report_heap). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchnet.h"

struct conn {
	struct event ev; /* EV_READ|EV_PERSIST, or EV_WRITE|EV_PERSIST while out is queued */
	int fd;
	struct bench_out out;
};

static struct event_base *base;
static char buf[BENCH_READ_SIZE];

static void conn_on_io(evutil_socket_t fd, short what, void *arg);

static void conn_free(struct conn *c)
{
	event_del(&c->ev);
	close(c->fd);
	free(c->out.buf);
	free(c);
}

/* Re-registers the connection's one event for reading or for writing. 0, or -1. */
static int conn_watch(struct conn *c, short what)
{
	event_del(&c->ev);
	event_assign(&c->ev, base, c->fd, what | EV_PERSIST, conn_on_io, c);
	return event_add(&c->ev, NULL);
}

static void conn_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	int r;

	if (what & EV_WRITE) {
		r = bench_flush(fd, &c->out);
		if (r < 0 || (r == 0 && conn_watch(c, EV_READ) < 0))
			conn_free(c);
		return;
	}
	r = bench_echo(fd, buf, sizeof(buf), &c->out);
	/* 1: the kernel took only part of the echo: stop reading until it is flushed. */
	if (r < 0 || (r == 1 && conn_watch(c, EV_WRITE) < 0))
		conn_free(c);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	event_add(arg, NULL);
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
	struct event *ev_accept = arg;

	(void)what;
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			static const struct timeval pause = {0, 100000};

			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN)
				return;
			fprintf(stderr, "ev-echo: accept4: %s: pausing\n", strerror(errno));
			event_del(ev_accept);
			if (event_base_once(base, -1, EV_TIMEOUT, on_resume, ev_accept, &pause) < 0)
				event_add(ev_accept, NULL);
			return;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			close(fd);
			continue;
		}
		c->fd = fd;
		event_assign(&c->ev, base, fd, EV_READ | EV_PERSIST, conn_on_io, c);
		if (event_add(&c->ev, NULL) < 0) {
			close(fd);
			free(c);
		}
	}
}

static void on_heap_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	bench_report_heap();
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	(void)arg;
	event_base_loopexit(base, NULL);
}

int main(int argc, char **argv)
{
	const char *port_file;
	struct event *ev_accept, *sigterm, *sigint, *sigusr1;
	int lfd = bench_server_start("ev-echo", argc, argv, &port_file);

	if (lfd < 0)
		return 2;
	base = event_base_new();
	if (base == NULL) {
		fprintf(stderr, "ev-echo: event_base_new failed\n");
		return 1;
	}
	ev_accept = event_new(base, lfd, EV_READ | EV_PERSIST, on_accept, event_self_cbarg());
	sigterm = evsignal_new(base, SIGTERM, on_signal, NULL);
	sigint = evsignal_new(base, SIGINT, on_signal, NULL);
	sigusr1 = evsignal_new(base, SIGUSR1, on_heap_signal, NULL);
	if (ev_accept == NULL || sigterm == NULL || sigint == NULL || sigusr1 == NULL ||
	    event_add(ev_accept, NULL) < 0 || event_add(sigterm, NULL) < 0 ||
	    event_add(sigint, NULL) < 0 || event_add(sigusr1, NULL) < 0 ||
	    (port_file != NULL && bench_write_port_file(port_file, lfd) < 0)) {
		fprintf(stderr, "ev-echo: start: %s\n", strerror(errno));
		return 1;
	}
	event_base_dispatch(base);
	/* Connections still open at exit are left to the kernel (process exit closes them). */
	event_free(ev_accept);
	event_free(sigterm);
	event_free(sigint);
	event_free(sigusr1);
	event_base_free(base);
	close(lfd);
	return 0;
}
