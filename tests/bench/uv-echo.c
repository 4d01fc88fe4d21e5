/* uv-echo: the idiomatic libuv echo server, for `make bench` only (a peer of echo-server:
 * what a user might write instead).
 *
 *   uv-echo [--listen HOST:PORT] [--port-file PATH]
 *
 * uv_tcp_bind and uv_listen (backlog BENCH_BACKLOG); per accepted connection uv_accept,
 * uv_tcp_nodelay (libuv applies it per connection: the handle's flag, not the listener's,
 * decides) and uv_read_start with one shared BENCH_READ_SIZE buffer. The read callback
 * sends what it read straight back with uv_try_write (a plain write(), no request, no
 * copy: the common case on loopback); only what the kernel did not take is copied into a
 * uv_write request, and reading stops until it is written, so the memory per connection
 * stays bounded by one read (as in epoll-echo). EOF or an error: uv_close.
 * SIGTERM/SIGINT: uv_stop, exit 0. SIGUSR1: a `heap {json}` line on stdout
 * (bench_report_heap). SIGPIPE: ignored, as libuv's documentation asks of the program (it
 * writes with write()/writev(), which raise it on a reset connection). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "benchnet.h"

/* The rest of one echo the kernel did not take at once. */
struct rest {
	uv_write_t req;
	char data[];
};

static char rbuf[BENCH_READ_SIZE]; /* one read is echoed before the next one starts */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void on_closed(uv_handle_t *h)
{
	free(h);
}

static void conn_close(uv_stream_t *s)
{
	if (!uv_is_closing((uv_handle_t *)s))
		uv_close((uv_handle_t *)s, on_closed);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *req, int status)
{
	uv_stream_t *s = req->handle;

	free(req);
	if (status == UV_ECANCELED) /* the handle is closing */
		return;
	if (status < 0 || uv_read_start(s, on_alloc, on_read) < 0)
		conn_close(s);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	uv_buf_t out = uv_buf_init(buf->base, (unsigned int)(nread > 0 ? nread : 0));
	struct rest *r;
	int w;

	if (nread < 0) { /* UV_EOF or an error */
		conn_close(s);
		return;
	}
	if (nread == 0) /* EAGAIN */
		return;
	w = uv_try_write(s, &out, 1);
	if (w == nread)
		return;
	if (w < 0 && w != UV_EAGAIN) {
		conn_close(s);
		return;
	}
	if (w < 0)
		w = 0;
	r = malloc(sizeof(*r) + (size_t)(nread - w));
	if (r == NULL) {
		conn_close(s);
		return;
	}
	memcpy(r->data, buf->base + w, (size_t)(nread - w));
	out = uv_buf_init(r->data, (unsigned int)(nread - w));
	uv_read_stop(s);
	if (uv_write(&r->req, s, &out, 1, on_written) < 0) {
		free(r);
		conn_close(s);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	uv_tcp_t *c;

	if (status < 0) {
		fprintf(stderr, "uv-echo: accept: %s\n", uv_strerror(status));
		return;
	}
	c = malloc(sizeof(*c));
	if (c == NULL || uv_tcp_init(server->loop, c) < 0) {
		free(c);
		return;
	}
	if (uv_accept(server, (uv_stream_t *)c) < 0 || uv_tcp_nodelay(c, 1) < 0 ||
	    uv_read_start((uv_stream_t *)c, on_alloc, on_read) < 0)
		conn_close((uv_stream_t *)c);
}

static void on_signal(uv_signal_t *h, int sig)
{
	if (sig == SIGUSR1)
		bench_report_heap();
	else
		uv_stop(h->loop);
}

static int start(uv_loop_t *loop, uv_tcp_t *server, const char *listen_s, const char *port_file)
{
	struct sockaddr_in sa;
	uv_os_fd_t fd;
	int r;

	if (bench_parse_hostport(listen_s, &sa) < 0) {
		fprintf(stderr, "uv-echo: --listen %s: not an IPv4 HOST:PORT\n", listen_s);
		return -1;
	}
	r = uv_tcp_init(loop, server);
	if (r == 0)
		r = uv_tcp_bind(server, (const struct sockaddr *)&sa, 0);
	if (r == 0)
		r = uv_listen((uv_stream_t *)server, BENCH_BACKLOG, on_connection);
	if (r == 0)
		r = uv_fileno((uv_handle_t *)server, &fd);
	if (r < 0) {
		fprintf(stderr, "uv-echo: listen %s: %s\n", listen_s, uv_strerror(r));
		return -1;
	}
	if (port_file != NULL && bench_write_port_file(port_file, fd) < 0) {
		fprintf(stderr, "uv-echo: %s: %s\n", port_file, strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *listen_s, *port_file;
	uv_loop_t *loop = uv_default_loop();
	uv_tcp_t server;
	uv_signal_t sigs[3];
	const int signums[3] = {SIGTERM, SIGINT, SIGUSR1};

	if (bench_server_args("uv-echo", argc, argv, &listen_s, &port_file) < 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	if (start(loop, &server, listen_s, port_file) < 0)
		return 2;
	for (int i = 0; i < 3; i++) {
		if (uv_signal_init(loop, &sigs[i]) < 0 ||
		    uv_signal_start(&sigs[i], on_signal, signums[i]) < 0) {
			fprintf(stderr, "uv-echo: signal handlers failed\n");
			return 1;
		}
	}
	uv_run(loop, UV_RUN_DEFAULT);
	/* Connections still open at exit are left to the kernel (process exit closes them). */
	return 0;
}
