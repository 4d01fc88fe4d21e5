/* bev-echo: the textbook libevent echo server, for `make bench` only.
 *
 * What the libevent book and most tutorials build: an evconnlistener, one bufferevent per
 * connection, a read callback that moves the input buffer to the output buffer, an event
 * callback that frees the bufferevent on EOF, error or timeout, and a read timeout as the
 * application heartbeat (the same 60 s as bin/echo-server's heartbeat_timeout default).
 * It is measured beside epoll-echo and bin/echo-server to show what the bufferevent layer
 * costs and why (the bench's "system calls per message" table):
 *
 * - deferred writes: bufferevent_write only queues; EV_WRITE is added (epoll_ctl MOD),
 *   the write happens when the loop next reports the socket writable, and EV_WRITE is
 *   removed again (epoll_ctl MOD) once the output is empty: two epoll_ctl per echo.
 * - per-message timer re-arming: every read re-adds the read timeout (a min-heap timer).
 * - read sizes: evbuffer_read asks the kernel how much is readable (ioctl FIONREAD)
 *   before every readv.
 *
 *   bev-echo [--listen HOST:PORT] [--port-file PATH]
 *
 * TCP_NODELAY is set on the listener (inherited), like epoll-echo. SIGTERM/SIGINT: exit 0.
 * SIGUSR1: a `heap {json}` line on stdout (bench_report_heap).
 * It does not watch EPOLLRDHUP (a bufferevent cannot) and has no write timeout: it is a
 * baseline of cost, not an example of closing correctly. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "benchnet.h"

static const struct timeval heartbeat = {60, 0};

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_add_buffer(bufferevent_get_output(bev), bufferevent_get_input(bev));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)arg;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
		bufferevent_free(bev);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
		      void *arg)
{
	struct bufferevent *bev =
	    bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);

	(void)sa;
	(void)len;
	(void)arg;
	if (bev == NULL) {
		close(fd);
		return;
	}
	bufferevent_setcb(bev, on_read, NULL, on_event, NULL);
	bufferevent_set_timeouts(bev, &heartbeat, NULL);
	if (bufferevent_enable(bev, EV_READ | EV_WRITE) < 0)
		bufferevent_free(bev);
}

/* EMFILE and the like (libevent retries EINTR/EAGAIN/ECONNABORTED itself): the listener
 * stays readable, so it is disabled for 100 ms instead of spinning, as in epoll-echo. */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	evconnlistener_enable(arg);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
	static const struct timeval pause = {0, 100000};

	fprintf(stderr, "bev-echo: accept: %s: pausing\n", strerror(errno));
	evconnlistener_disable(l);
	if (event_base_once(evconnlistener_get_base(l), -1, EV_TIMEOUT, on_resume, l, &pause) < 0)
		evconnlistener_enable(l);
	(void)arg;
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
	event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
	const char *port_file;
	struct event_base *base;
	struct evconnlistener *l;
	struct event *sigterm, *sigint, *sigusr1;
	int fd = bench_server_start("bev-echo", argc, argv, &port_file);

	if (fd < 0)
		return 2;
	base = event_base_new();
	/* Backlog 0: the socket already listens (4096); -1 would listen() again with 128. */
	l = base ? evconnlistener_new(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE, 0, fd) : NULL;
	sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
	sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
	sigusr1 = base ? evsignal_new(base, SIGUSR1, on_heap_signal, NULL) : NULL;
	if (l == NULL || sigterm == NULL || sigint == NULL || sigusr1 == NULL ||
	    event_add(sigterm, NULL) < 0 || event_add(sigint, NULL) < 0 ||
	    event_add(sigusr1, NULL) < 0 ||
	    (port_file != NULL && bench_write_port_file(port_file, fd) < 0)) {
		fprintf(stderr, "bev-echo: start: %s\n", strerror(errno));
		return 1;
	}
	evconnlistener_set_error_cb(l, on_accept_error);
	event_base_dispatch(base);
	/* Connections still open at exit are left to the kernel (process exit closes them). */
	evconnlistener_free(l);
	event_free(sigterm);
	event_free(sigint);
	event_free(sigusr1);
	event_base_free(base);
	return 0;
}
