/* scrape: the server's own figures for the timeline (--metrics http://HOST:PORT/PATH, the
 * server's Prometheus /metrics), read without ever blocking the caller's event loop: each
 * step (once a second) moves one HTTP/1.0 GET along as far as it can go at once (a
 * non-blocking connect, the request, what has arrived of the answer) and starts the next
 * when one is complete. A server that stalls leaves the last figures standing, with their
 * age; nothing waits for it. Only numeric hosts: nothing is resolved while a run lasts. */
#ifndef TEARDOWN_SCRAPE_H
#define TEARDOWN_SCRAPE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define SCRAPE_BUF (256 * 1024)

/* The server's figures of one scrape (teardown_connections_open, teardown_fds_open,
 * teardown_close_wait_sockets). */
struct scrape_view {
	int have; /* 0: none yet */
	uint64_t open, fds, close_wait;
	int64_t at_us; /* monotonic time of the answer */
};

struct scrape {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char request[600];
	int fd;
	int state; /* idle, connecting, reading */
	size_t len;
	char *buf; /* [SCRAPE_BUF] */
	struct scrape_view last;
};

/* Parses the URL. 0, or -1 with the reason. */
int scrape_init(struct scrape *s, const char *url, char *err, size_t errlen);
/* Moves the current request along; starts one when none is under way. */
void scrape_step(struct scrape *s, int64_t now_us);
void scrape_free(struct scrape *s);
/* The figures of a Prometheus text (exposed for tests). 0, or -1 when one is missing. */
int scrape_parse(const char *text, struct scrape_view *v);

#endif
