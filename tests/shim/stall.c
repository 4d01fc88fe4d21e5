/* stall.so: an LD_PRELOAD fault-injection shim for the integration tests (never part of
 * the product). It wraps a few calls the server really makes, so a test can make one of
 * them block or fail at a moment it chooses, without a signal and without a special
 * build.
 *
 * TEARDOWN_SHIM holds rules separated by ';', each a list of key=value separated by ',':
 *   call=NAME      which call the rule acts on (below)
 *   sleep_ms=N     block N ms inside the call, then carry it out; with a trigger the
 *                  trigger file is removed afterwards, so each file makes one stall
 *   spin_ms=N      likewise, but busy: N ms of the calling thread's CPU time (a call that
 *                  costs CPU, such as a census of many sockets)
 *   errno=N        fail the call with this errno instead of carrying it out
 *   trigger=PATH   act only while PATH exists (without it, always)
 *   ms=N           timer_add: only timers of this duration (ms)
 *   family=N       socket: only this address family (16 = AF_NETLINK: the census socket)
 * Calls:
 *   getdents64     the watchdog's listing of /proc/self/fd (only when the number of open
 *                  fds differs from what the server accounts for)
 *   fstat          the watchdog's count of open fds (once per census tick, and per
 *                  SIGUSR1), and any other fstat(2)
 *   close          close(2) of any fd: errno=N makes it fail and leave the fd open (a leak)
 *   recvmsg        the census's reads of its sock_diag dump (a slow census)
 *   recv           a connection's read
 *   socket         socket(2), e.g. family=16 makes census_open fail
 *   tcp_info       getsockopt(IPPROTO_TCP, TCP_INFO): a kernel without it
 *   timer_new      libevent's event_new for a timer (fd -1, no I/O or signal)
 *   timer_add      libevent's event_add for a timer (fd -1), optionally of one duration
 *   pdeathsig      prctl(PR_SET_PDEATHSIG): a worker between its fork and the moment it
 *                  asks to follow its parent's death
 * Example: TEARDOWN_SHIM="call=fstat,sleep_ms=3000,trigger=/tmp/stall" stalls the
 * next census tick after /tmp/stall appears for 3 s. The next definitions of the wrapped
 * functions are found with dlsym(RTLD_NEXT): libc's, or a sanitizer's interceptor (the
 * ASan build then needs ASAN_OPTIONS=verify_asan_link_order=0). */
#include <dirent.h> /* getdents64 */
#include <dlfcn.h>
#include <errno.h>
#include <event2/event.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define SHIM_RULES 8

struct shim_rule {
	char call[32];
	long sleep_ms;
	long spin_ms;
	int err;
	long ms;
	int family;
	char trigger[512];
};

static struct shim_rule rules[SHIM_RULES];
static int nrules;

static void shim_set(struct shim_rule *r, const char *key, const char *val)
{
	if (strcmp(key, "call") == 0)
		strncpy(r->call, val, sizeof(r->call) - 1);
	else if (strcmp(key, "sleep_ms") == 0)
		r->sleep_ms = strtol(val, NULL, 10);
	else if (strcmp(key, "spin_ms") == 0)
		r->spin_ms = strtol(val, NULL, 10);
	else if (strcmp(key, "errno") == 0)
		r->err = (int)strtol(val, NULL, 10);
	else if (strcmp(key, "ms") == 0)
		r->ms = strtol(val, NULL, 10);
	else if (strcmp(key, "family") == 0)
		r->family = (int)strtol(val, NULL, 10);
	else if (strcmp(key, "trigger") == 0)
		strncpy(r->trigger, val, sizeof(r->trigger) - 1);
}

static void shim_parse_rule(char *text)
{
	struct shim_rule *r = &rules[nrules];
	char *save = NULL;

	memset(r, 0, sizeof(*r));
	r->ms = -1;
	r->family = -1;
	for (char *kv = strtok_r(text, ",", &save); kv != NULL; kv = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(kv, '=');

		if (eq == NULL)
			continue;
		*eq = '\0';
		shim_set(r, kv, eq + 1);
	}
	if (r->call[0] != '\0' && nrules < SHIM_RULES)
		nrules++;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *env = getenv("TEARDOWN_SHIM");
	char buf[4096], *save = NULL;

	if (env == NULL)
		return;
	strncpy(buf, env, sizeof(buf) - 1);
	buf[sizeof(buf) - 1] = '\0';
	for (char *r = strtok_r(buf, ";", &save); r != NULL; r = strtok_r(NULL, ";", &save))
		shim_parse_rule(r);
}

/* The rule for this call that is active now, or NULL. */
static const struct shim_rule *shim_find(const char *call, long ms, int family)
{
	int saved = errno;

	for (int i = 0; i < nrules; i++) {
		const struct shim_rule *r = &rules[i];

		if (strcmp(r->call, call) != 0 || (r->ms >= 0 && r->ms != ms) ||
		    (r->family >= 0 && r->family != family))
			continue;
		if (r->trigger[0] != '\0' && access(r->trigger, F_OK) != 0)
			continue;
		errno = saved;
		return r;
	}
	errno = saved;
	return NULL;
}

static int64_t shim_thread_cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Acts on the rule: 0 to carry out the call (after a stall), -1 (errno set) to fail it. */
static int shim_act(const struct shim_rule *r)
{
	if (r->sleep_ms > 0 || r->spin_ms > 0) {
		struct timespec ts = {r->sleep_ms / 1000, (r->sleep_ms % 1000) * 1000000L};
		int64_t until = shim_thread_cpu_ms() + r->spin_ms;
		int saved = errno;

		while (r->sleep_ms > 0 && nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
		while (shim_thread_cpu_ms() < until)
			; /* busy on purpose */
		if (r->trigger[0] != '\0')
			unlink(r->trigger);
		errno = saved;
	}
	if (r->err != 0) {
		errno = r->err;
		return -1;
	}
	return 0;
}

static int shim_check(const char *call, long ms, int family)
{
	const struct shim_rule *r = nrules > 0 ? shim_find(call, ms, family) : NULL;

	return r != NULL ? shim_act(r) : 0;
}

static void *shim_next(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (f == NULL)
		abort(); /* the shim cannot work at all: better no test run than a wrong one */
	return f;
}

ssize_t getdents64(int fd, void *buf, size_t len)
{
	static ssize_t (*next)(int, void *, size_t);

	if (next == NULL)
		next = (ssize_t(*)(int, void *, size_t))shim_next("getdents64");
	if (shim_check("getdents64", -1, -1) < 0)
		return -1;
	return next(fd, buf, len);
}

int fstat(int fd, struct stat *st)
{
	static int (*next)(int, struct stat *);

	if (next == NULL)
		next = (int (*)(int, struct stat *))shim_next("fstat");
	if (shim_check("fstat", -1, -1) < 0)
		return -1;
	return next(fd, st);
}

int close(int fd)
{
	static int (*next)(int);

	if (next == NULL)
		next = (int (*)(int))shim_next("close");
	if (shim_check("close", -1, -1) < 0)
		return -1;
	return next(fd);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	static ssize_t (*next)(int, struct msghdr *, int);

	if (next == NULL)
		next = (ssize_t(*)(int, struct msghdr *, int))shim_next("recvmsg");
	if (shim_check("recvmsg", -1, -1) < 0)
		return -1;
	return next(fd, msg, flags);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	static ssize_t (*next)(int, void *, size_t, int);

	if (next == NULL)
		next = (ssize_t(*)(int, void *, size_t, int))shim_next("recv");
	if (shim_check("recv", -1, -1) < 0)
		return -1;
	return next(fd, buf, len, flags);
}

int socket(int family, int type, int protocol)
{
	static int (*next)(int, int, int);

	if (next == NULL)
		next = (int (*)(int, int, int))shim_next("socket");
	if (shim_check("socket", -1, family) < 0)
		return -1;
	return next(family, type, protocol);
}

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	static int (*next)(int, int, int, void *, socklen_t *);

	if (next == NULL)
		next = (int (*)(int, int, int, void *, socklen_t *))shim_next("getsockopt");
	if (level == IPPROTO_TCP && name == TCP_INFO && shim_check("tcp_info", -1, -1) < 0)
		return -1;
	return next(fd, level, name, val, len);
}

struct event *event_new(struct event_base *base, evutil_socket_t fd, short what,
			event_callback_fn cb, void *arg)
{
	static struct event *(*next)(struct event_base *, evutil_socket_t, short, event_callback_fn,
				     void *);

	if (next == NULL)
		next = (struct event * (*)(struct event_base *, evutil_socket_t, short,
					   event_callback_fn, void *)) shim_next("event_new");
	if (fd == -1 && !(what & (EV_READ | EV_WRITE | EV_SIGNAL)) &&
	    shim_check("timer_new", -1, -1) < 0)
		return NULL;
	return next(base, fd, what, cb, arg);
}

/* A libevent common timeout keeps its duration in tv_sec and the low 20 bits of tv_usec
 * (the rest of tv_usec marks it as common); a plain timeval's tv_usec fits those bits. */
static long shim_tv_ms(const struct timeval *tv)
{
	return (long)tv->tv_sec * 1000 + (long)(tv->tv_usec & 0xfffff) / 1000;
}

int event_add(struct event *ev, const struct timeval *tv)
{
	static int (*next)(struct event *, const struct timeval *);

	if (next == NULL)
		next = (int (*)(struct event *, const struct timeval *))shim_next("event_add");
	if (tv != NULL && event_get_fd(ev) == -1 && !(event_get_events(ev) & EV_SIGNAL) &&
	    shim_check("timer_add", shim_tv_ms(tv), -1) < 0)
		return -1;
	return next(ev, tv);
}

int prctl(int option, ...)
{
	static int (*next)(int, ...);
	unsigned long a[4];
	va_list ap;

	if (next == NULL)
		next = (int (*)(int, ...))shim_next("prctl");
	va_start(ap, option);
	for (int i = 0; i < 4; i++)
		a[i] = va_arg(ap, unsigned long);
	va_end(ap);
	if (option == PR_SET_PDEATHSIG && shim_check("pdeathsig", -1, -1) < 0)
		return -1;
	return next(option, a[0], a[1], a[2], a[3]);
}
