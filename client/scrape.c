#include "scrape.h"
#include "log.h"
#include "sock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { SC_IDLE, SC_CONNECTING, SC_READING };

int scrape_init(struct scrape *s, const char *url, char *err, size_t errlen)
{
	char hostport[300];
	const char *rest, *path;
	size_t n;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	if (strncmp(url, "http://", 7) != 0) {
		snprintf(err, errlen, "'%s': expected http://HOST:PORT/PATH", url);
		return -1;
	}
	rest = url + 7;
	path = strchr(rest, '/');
	n = path != NULL ? (size_t)(path - rest) : strlen(rest);
	if (n == 0 || n >= sizeof(hostport)) {
		snprintf(err, errlen, "'%s': expected http://HOST:PORT/PATH", url);
		return -1;
	}
	memcpy(hostport, rest, n);
	hostport[n] = '\0';
	if (sock_parse_hostport(hostport, &s->addr, &s->addrlen, err, errlen) < 0)
		return -1;
	snprintf(s->request, sizeof(s->request), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
		 path != NULL ? path : "/metrics", hostport);
	s->buf = malloc(SCRAPE_BUF);
	if (s->buf == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static void scrape_close(struct scrape *s)
{
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	s->state = SC_IDLE;
}

void scrape_free(struct scrape *s)
{
	scrape_close(s);
	free(s->buf);
	s->buf = NULL;
}

/* The value of the first sample of `name` without labels. */
static int metric(const char *text, const char *name, uint64_t *out)
{
	size_t n = strlen(name);

	for (const char *p = text; p != NULL && *p != '\0';
	     p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, name, n) == 0 && p[n] == ' ') {
			*out = (uint64_t)strtod(p + n + 1, NULL);
			return 0;
		}
	}
	return -1;
}

int scrape_parse(const char *text, struct scrape_view *v)
{
	if (metric(text, "teardown_connections_open", &v->open) < 0 ||
	    metric(text, "teardown_fds_open", &v->fds) < 0 ||
	    metric(text, "teardown_close_wait_sockets", &v->close_wait) < 0)
		return -1;
	v->have = 1;
	return 0;
}

static void scrape_start(struct scrape *s)
{
	s->len = 0;
	s->fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		log_debug("--metrics: socket: %s", strerror(errno));
		return;
	}
	if (connect(s->fd, (struct sockaddr *)&s->addr, s->addrlen) < 0 && errno != EINPROGRESS) {
		log_debug("--metrics: connect: %s", strerror(errno));
		scrape_close(s);
		return;
	}
	s->state = SC_CONNECTING;
}

/* Connected by now (poll with no wait): the request goes in one send (it is small). */
static void scrape_request(struct scrape *s)
{
	struct pollfd pfd = {.fd = s->fd, .events = POLLOUT};
	int err = 0;
	socklen_t len = sizeof(err);

	if (poll(&pfd, 1, 0) <= 0)
		return; /* still connecting: the next step */
	if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0 ||
	    send(s->fd, s->request, strlen(s->request), MSG_NOSIGNAL) !=
		(ssize_t)strlen(s->request)) {
		log_debug("--metrics: no answer from the server's metrics (%s)",
			  strerror(err ? err : errno));
		scrape_close(s);
		return;
	}
	s->state = SC_READING;
}

/* Reads what has arrived; at the server's close, the answer is complete. */
static void scrape_read(struct scrape *s, int64_t now_us)
{
	for (;;) {
		ssize_t n = recv(s->fd, s->buf + s->len, SCRAPE_BUF - 1 - s->len, 0);
		if (n > 0) {
			s->len += (size_t)n;
			if (s->len < SCRAPE_BUF - 1)
				continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	s->buf[s->len] = '\0';
	if (strstr(s->buf, " 200 ") != NULL && scrape_parse(s->buf, &s->last) == 0)
		s->last.at_us = now_us;
	else
		log_debug("--metrics: an answer without the server's figures");
	scrape_close(s);
}

void scrape_step(struct scrape *s, int64_t now_us)
{
	if (s->state == SC_CONNECTING)
		scrape_request(s);
	if (s->state == SC_READING)
		scrape_read(s, now_us);
	if (s->state == SC_IDLE)
		scrape_start(s);
	if (s->state == SC_CONNECTING) /* on loopback it is often connected at once */
		scrape_request(s);
}
