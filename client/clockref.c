#include "clockref.h"
#include "clock.h"
#include "sock.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* How long one request to the reference may take, and how long to wait for its second
 * to turn. */
#define REF_TIMEOUT_MS 1000
#define REF_WINDOW_MS  1500
#define REF_STEP_MS    5

static int64_t unix_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int time_fail(char *err, size_t errlen, const char *s)
{
	snprintf(err, errlen,
		 "'%s': expected RFC 3339 (2026-12-06T11:30:00Z, or with +HH:MM) or seconds "
		 "since 1970",
		 s);
	return -1;
}

/* ".25" into microseconds; p just past the digits. */
static int64_t fraction_us(const char *s, const char **p)
{
	int64_t us = 0, scale = 100000;

	*p = s;
	if (*s != '.')
		return 0;
	for (s++; *s >= '0' && *s <= '9'; s++) {
		us += (*s - '0') * scale;
		scale /= 10;
	}
	*p = s;
	return us;
}

int clockref_parse_time(const char *s, int64_t *unix_us, char *err, size_t errlen)
{
	struct tm tm;
	const char *p;
	char *end;
	int64_t frac, zone = 0;

	if (s[0] >= '0' && s[0] <= '9' && strspn(s, "0123456789.") == strlen(s)) {
		long long secs = strtoll(s, &end, 10);
		frac = fraction_us(end, &p);
		if (*p != '\0' || end == s)
			return time_fail(err, errlen, s);
		*unix_us = (int64_t)secs * 1000000 + frac;
		return 0;
	}
	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm);
	if (p == NULL)
		return time_fail(err, errlen, s);
	frac = fraction_us(p, &p);
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
		zone = 0;
	} else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
		int h = atoi(p + 1), m = atoi(p + 4);
		zone = (*p == '-' ? -1 : 1) * (h * 3600 + m * 60);
	} else {
		return time_fail(err, errlen, s);
	}
	*unix_us = ((int64_t)timegm(&tm) - zone) * 1000000 + frac;
	return 0;
}

void clockref_wait_until(int64_t unix_us)
{
	struct timespec ts = {.tv_sec = unix_us / 1000000, .tv_nsec = unix_us % 1000000 * 1000};

	/* TIMER_ABSTIME on CLOCK_REALTIME: a clock set meanwhile moves the wake-up with it. */
	while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* Waits for fd to be ready for `events`, at most REF_TIMEOUT_MS. */
static int ref_poll(int fd, short events)
{
	struct pollfd pfd = {.fd = fd, .events = events};

	return poll(&pfd, 1, REF_TIMEOUT_MS) == 1 ? 0 : -1;
}

/* One GET: the Date of its answer (seconds since 1970), the local send and receive times.
 * 0, or -1 with the reason. */
static int ref_get(const char *request, const struct sockaddr_storage *ss, socklen_t len,
		   int64_t *date, int64_t *sent_us, int64_t *recvd_us, char *why, size_t whylen)
{
	char buf[8192], *d;
	size_t n = 0;
	ssize_t r;
	struct tm tm;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc = -1;

	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	*sent_us = unix_now_us();
	if ((connect(fd, (const struct sockaddr *)ss, len) < 0 && errno != EINPROGRESS) ||
	    ref_poll(fd, POLLOUT) < 0 ||
	    send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
		snprintf(why, whylen, "no answer (%s)", errno ? strerror(errno) : "timeout");
		goto out;
	}
	while (n < sizeof(buf) - 1 && ref_poll(fd, POLLIN) == 0 &&
	       (r = recv(fd, buf + n, sizeof(buf) - 1 - n, 0)) > 0) {
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") != NULL)
			break; /* the headers are all we need */
	}
	*recvd_us = unix_now_us();
	buf[n] = '\0';
	d = strstr(buf, "\r\nDate: ");
	memset(&tm, 0, sizeof(tm));
	if (d == NULL || strptime(d + 8, "%a, %d %b %Y %H:%M:%S GMT", &tm) == NULL) {
		snprintf(why, whylen, "its answer has no Date header");
		goto out;
	}
	*date = (int64_t)timegm(&tm);
	rc = 0;
out:
	close(fd);
	return rc;
}

static int ref_address(const char *url, struct sockaddr_storage *ss, socklen_t *len, char *request,
		       size_t reqlen, char *why, size_t whylen)
{
	char hostport[300];
	const char *rest = url + 7, *path;
	size_t n;

	if (strncmp(url, "http://", 7) != 0) {
		snprintf(why, whylen, "not an http:// URL");
		return -1;
	}
	path = strchr(rest, '/');
	n = path != NULL ? (size_t)(path - rest) : strlen(rest);
	if (n == 0 || n >= sizeof(hostport)) {
		snprintf(why, whylen, "not http://HOST:PORT/PATH");
		return -1;
	}
	memcpy(hostport, rest, n);
	hostport[n] = '\0';
	if (sock_parse_hostport(hostport, ss, len, why, whylen) < 0)
		return -1;
	snprintf(request, reqlen, "HEAD %s HTTP/1.0\r\nHost: %s\r\n\r\n", path ? path : "/",
		 hostport);
	return 0;
}

void clockref_measure(struct clock_info *info, const char *url)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char request[600];
	int64_t date, sent, recvd, prev_date = -1, prev_sent = 0, t_end;
	struct timespec step = {0, REF_STEP_MS * 1000000L};

	snprintf(info->reference, sizeof(info->reference), "%s", url);
	if (ref_address(url, &ss, &len, request, sizeof(request), info->why, sizeof(info->why)) < 0)
		return;
	t_end = clock_mono_ms() + REF_WINDOW_MS;
	while (clock_mono_ms() < t_end) {
		if (ref_get(request, &ss, len, &date, &sent, &recvd, info->why, sizeof(info->why)) <
		    0)
			return;
		if (prev_date >= 0 && date == prev_date + 1) {
			/* the reference's second turned after prev_sent and before recvd */
			info->known = 1;
			info->offset_us = date * 1000000 - (prev_sent + recvd) / 2;
			info->uncertainty_us = (recvd - prev_sent) / 2;
			info->why[0] = '\0';
			return;
		}
		prev_date = date;
		prev_sent = sent;
		nanosleep(&step, NULL); /* the next sample of the reference's second */
	}
	snprintf(info->why, sizeof(info->why), "its Date did not turn to the next second in %d ms",
		 REF_WINDOW_MS);
}
