#include "listenfds.h"
#include "sock.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void listenfds_unset(void)
{
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
}

/* A whole decimal number within [min, max]: 0 and *out set, or -1. No atoi: "12x",
 * "", " 1" and overflow are refused. */
static int parse_count(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static void listenfds_names(struct listenfds *out, const char *names)
{
	for (int i = 0; i < out->n && names != NULL; i++) {
		const char *colon = strchr(names, ':');
		size_t len = colon ? (size_t)(colon - names) : strlen(names);

		if (len >= sizeof(out->name[i]))
			len = sizeof(out->name[i]) - 1;
		memcpy(out->name[i], names, len);
		out->name[i][len] = '\0';
		names = colon ? colon + 1 : NULL;
	}
}

static int listenfds_read(struct listenfds *out, char *err, size_t errlen)
{
	const char *pid_s = getenv("LISTEN_PID"), *fds_s = getenv("LISTEN_FDS");
	long pid, n;

	if (pid_s == NULL && fds_s == NULL)
		return 0;
	if (parse_count(pid_s, 1, 0x7fffffff, &pid) < 0) {
		snprintf(err, errlen,
			 "LISTEN_PID=%.32s is not a process id: passed sockets ignored",
			 pid_s ? pid_s : "(unset)");
		return -1;
	}
	if (pid != (long)getpid()) {
		snprintf(err, errlen,
			 "LISTEN_PID=%ld is not this process (%ld): passed sockets "
			 "ignored",
			 pid, (long)getpid());
		return -1;
	}
	if (parse_count(fds_s, 0, LISTENFDS_MAX, &n) < 0) {
		snprintf(err, errlen,
			 "LISTEN_FDS=%.32s is not a count from 0 to %d: passed sockets "
			 "ignored",
			 fds_s ? fds_s : "(unset)", LISTENFDS_MAX);
		return -1;
	}
	for (int i = 0; i < (int)n; i++) {
		int fd = LISTENFDS_START + i;

		if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
			snprintf(err, errlen,
				 "LISTEN_FDS=%ld: descriptor %d: %s: passed sockets "
				 "ignored",
				 n, fd, strerror(errno));
			return -1;
		}
		out->fd[i] = fd;
	}
	out->n = (int)n;
	listenfds_names(out, getenv("LISTEN_FDNAMES"));
	return out->n;
}

int listenfds_take(struct listenfds *out, char *err, size_t errlen)
{
	int rc;

	memset(out, 0, sizeof(*out));
	rc = listenfds_read(out, err, errlen);
	if (rc < 0)
		out->n = 0;
	listenfds_unset();
	return rc;
}

static int get_int(int fd, int opt, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, SOL_SOCKET, opt, v, &len);
}

/* Same family, address and port. */
static int same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return 0;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return 0;
}

int listenfds_check(int fd, const struct sockaddr *want, socklen_t wantlen, char *err,
		    size_t errlen)
{
	struct sockaddr_storage got;
	socklen_t len = sizeof(got);
	char a[64], b[64];
	struct stat st;
	int type, proto, acc;

	(void)wantlen;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "descriptor %d is not a socket", fd);
		return -1;
	}
	if (get_int(fd, SO_TYPE, &type) < 0 || get_int(fd, SO_PROTOCOL, &proto) < 0 ||
	    type != SOCK_STREAM || proto != IPPROTO_TCP) {
		snprintf(err, errlen, "descriptor %d is not a TCP socket", fd);
		return -1;
	}
	if (get_int(fd, SO_ACCEPTCONN, &acc) < 0 || !acc) {
		snprintf(err, errlen, "descriptor %d is not listening", fd);
		return -1;
	}
	if (getsockname(fd, (struct sockaddr *)&got, &len) < 0 ||
	    !same_addr((struct sockaddr *)&got, want)) {
		snprintf(err, errlen, "descriptor %d is bound to %s, the config says %s", fd,
			 sock_addr_str((struct sockaddr *)&got, a, sizeof(a)),
			 sock_addr_str(want, b, sizeof(b)));
		return -1;
	}
	return 0;
}
