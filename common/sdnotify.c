#include "sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The address of $NOTIFY_SOCKET. 0, 1 when unset, -1 (EINVAL) when it cannot be one. */
static int sdnotify_addr(struct sockaddr_un *sa, socklen_t *len)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t n;

	if (path == NULL || *path == '\0')
		return 1;
	n = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || n >= sizeof(sa->sun_path)) {
		errno = EINVAL;
		return -1;
	}
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract: the length, not a NUL, ends the name */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
	return 0;
}

int sdnotify_enabled(void)
{
	const char *path = getenv("NOTIFY_SOCKET");

	return path != NULL && *path != '\0';
}

int sdnotify_send(const char *msg)
{
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t n;
	int fd, rc = sdnotify_addr(&sa, &len), e;

	if (rc != 0)
		return rc > 0 ? 0 : -1;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	n = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT, (struct sockaddr *)&sa, len);
	e = errno;
	close(fd);
	errno = e;
	if (n < 0)
		return -1;
	return 0;
}

int sdnotify_sendf(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		errno = EMSGSIZE;
		return -1;
	}
	return sdnotify_send(msg);
}

int sdnotify_ready(void)
{
	return sdnotify_send("READY=1");
}

int sdnotify_reloading(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return sdnotify_sendf("RELOADING=1\nMONOTONIC_USEC=%llu",
			      (unsigned long long)ts.tv_sec * 1000000ULL +
				  (unsigned long long)ts.tv_nsec / 1000);
}

int sdnotify_stopping(void)
{
	return sdnotify_send("STOPPING=1");
}

int sdnotify_mainpid(pid_t pid)
{
	return sdnotify_sendf("MAINPID=%ld", (long)pid);
}

int sdnotify_extend_timeout(uint64_t usec)
{
	return sdnotify_sendf("EXTEND_TIMEOUT_USEC=%llu", (unsigned long long)usec);
}
