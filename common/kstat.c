/* kstat: TcpExt counters and the sockstat TCP line, per network namespace (see kstat.h). */
#include "kstat.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* /proc/net/netstat is about 4 KiB on Linux 6.x; room for many more counters. */
#define KSTAT_BUF (64 * 1024)

static const char *const counter_names[KSTAT_NCOUNTERS] = {
    "TCPAbortOnClose",	   "TCPAbortOnData",  "TCPAbortOnTimeout", "TCPAbortOnMemory",
    "TCPTimeWaitOverflow", "ListenOverflows", "ListenDrops",
};

static const char *const counter_keys[KSTAT_NCOUNTERS] = {
    "tcp_abort_on_close",     "tcp_abort_on_data", "tcp_abort_on_timeout", "tcp_abort_on_memory",
    "tcp_time_wait_overflow", "listen_overflows",  "listen_drops",
};

static const char *const sockstat_names[KSTAT_NSOCKSTAT] = {"inuse", "orphan", "tw", "alloc",
							    "mem"};

static const char *const limit_names[KSTAT_NLIMITS] = {"tcp_max_orphans", "tcp_mem_low",
						       "tcp_mem_pressure", "tcp_mem_high"};

const char *kstat_counter_name(enum kstat_counter c)
{
	return (unsigned)c < KSTAT_NCOUNTERS ? counter_names[c] : "?";
}

const char *kstat_counter_key(enum kstat_counter c)
{
	return (unsigned)c < KSTAT_NCOUNTERS ? counter_keys[c] : "?";
}

const char *kstat_sockstat_name(enum kstat_sockstat s)
{
	return (unsigned)s < KSTAT_NSOCKSTAT ? sockstat_names[s] : "?";
}

const char *kstat_limit_name(enum kstat_limit l)
{
	return (unsigned)l < KSTAT_NLIMITS ? limit_names[l] : "?";
}

static int name_index(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -1;
}

int kstat_counter_parse(const char *name)
{
	return name_index(counter_names, KSTAT_NCOUNTERS, name);
}

int kstat_sockstat_parse(const char *name)
{
	return name_index(sockstat_names, KSTAT_NSOCKSTAT, name);
}

int kstat_limit_parse(const char *name)
{
	return name_index(limit_names, KSTAT_NLIMITS, name);
}

void kstat_delta(const struct kstat *start, const struct kstat *end, struct kstat *d)
{
	memset(d, 0, sizeof(*d));
	d->tcpext_found = start->tcpext_found & end->tcpext_found;
	for (int i = 0; i < KSTAT_NCOUNTERS; i++) {
		if ((d->tcpext_found & (1U << i)) && end->tcpext[i] > start->tcpext[i])
			d->tcpext[i] = end->tcpext[i] - start->tcpext[i];
	}
	d->sockstat_found = end->sockstat_found;
	memcpy(d->sockstat, end->sockstat, sizeof(d->sockstat));
}

/* The next space-separated token of the line [*p, end): its start, its length in *len; NULL
 * at the end of the line. */
static const char *next_token(const char **p, const char *end, size_t *len)
{
	const char *s = *p, *t;

	while (s < end && *s == ' ')
		s++;
	if (s >= end)
		return NULL;
	for (t = s; t < end && *t != ' '; t++)
		;
	*len = (size_t)(t - s);
	*p = t;
	return s;
}

static int token_is(const char *tok, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(tok, word, len) == 0;
}

/* A decimal token: 0 and *v, or -1. */
static int token_u64(const char *tok, size_t len, uint64_t *v)
{
	uint64_t x = 0;

	if (len == 0 || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (tok[i] < '0' || tok[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(tok[i] - '0');
	}
	*v = x;
	return 0;
}

static const char *line_end(const char *s)
{
	const char *e = strchr(s, '\n');

	return e != NULL ? e : s + strlen(s);
}

static int counter_index(const char *tok, size_t len)
{
	for (int i = 0; i < KSTAT_NCOUNTERS; i++)
		if (token_is(tok, len, counter_names[i]))
			return i;
	return -1;
}

/* The names line and the values line of the TcpExt group, token by token. */
static int parse_tcpext_pair(const char *names, const char *values, struct kstat *k)
{
	const char *ne = line_end(names), *ve = line_end(values), *n, *v;
	size_t nl, vl;

	/* Both lines start with "TcpExt:"; skip that token on both. */
	if (next_token(&names, ne, &nl) == NULL || next_token(&values, ve, &vl) == NULL)
		return -1;
	while ((n = next_token(&names, ne, &nl)) != NULL) {
		uint64_t x;
		int i;

		v = next_token(&values, ve, &vl);
		if (v == NULL || token_u64(v, vl, &x) < 0)
			return -1;
		i = counter_index(n, nl);
		if (i >= 0) {
			k->tcpext[i] = x;
			k->tcpext_found |= 1U << i;
		}
	}
	return 0;
}

int kstat_parse_netstat(const char *text, struct kstat *k)
{
	const char *p = text;

	while (*p != '\0') {
		const char *e = line_end(p);

		if (strncmp(p, "TcpExt:", 7) == 0 && *e == '\n' &&
		    strncmp(e + 1, "TcpExt:", 7) == 0)
			return parse_tcpext_pair(p, e + 1, k);
		p = *e == '\n' ? e + 1 : e;
	}
	return -1;
}

static int parse_sockstat_tcp(const char *p, struct kstat *k)
{
	const char *e = line_end(p), *n, *v;
	size_t nl, vl;

	next_token(&p, e, &nl); /* "TCP:" */
	while ((n = next_token(&p, e, &nl)) != NULL) {
		uint64_t x;

		v = next_token(&p, e, &vl);
		if (v == NULL || token_u64(v, vl, &x) < 0)
			return -1;
		for (int i = 0; i < KSTAT_NSOCKSTAT; i++) {
			if (token_is(n, nl, sockstat_names[i])) {
				k->sockstat[i] = x;
				k->sockstat_found |= 1U << i;
			}
		}
	}
	return 0;
}

int kstat_parse_sockstat(const char *text, struct kstat *k)
{
	const char *p = text;

	while (*p != '\0') {
		const char *e = line_end(p);

		if (strncmp(p, "TCP: ", 5) == 0)
			return parse_sockstat_tcp(p, k);
		p = *e == '\n' ? e + 1 : e;
	}
	return -1;
}

/* n blank-separated numbers, then at most a newline: 0, or -1. */
static int parse_numbers(const char *text, uint64_t *v, int n)
{
	const char *p = text;

	for (int i = 0; i < n; i++) {
		size_t len;
		p += strspn(p, " \t");
		len = strspn(p, "0123456789");
		if (token_u64(p, len, &v[i]) < 0)
			return -1;
		p += len;
	}
	p += strspn(p, " \t");
	return strcmp(p, "") == 0 || strcmp(p, "\n") == 0 ? 0 : -1;
}

int kstat_parse_max_orphans(const char *text, struct kstat_limits *l)
{
	if (parse_numbers(text, &l->v[KSTAT_MAX_ORPHANS], 1) < 0)
		return -1;
	l->found |= 1U << KSTAT_MAX_ORPHANS;
	return 0;
}

int kstat_parse_tcp_mem(const char *text, struct kstat_limits *l)
{
	uint64_t v[3];

	if (parse_numbers(text, v, 3) < 0)
		return -1;
	l->v[KSTAT_MEM_LOW] = v[0];
	l->v[KSTAT_MEM_PRESSURE] = v[1];
	l->v[KSTAT_MEM_HIGH] = v[2];
	l->found |= 1U << KSTAT_MEM_LOW | 1U << KSTAT_MEM_PRESSURE | 1U << KSTAT_MEM_HIGH;
	return 0;
}

static int kstat_open_one(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		log_warn("open %s: %s (those kernel counters are not reported)", path,
			 strerror(errno));
	return fd;
}

int kstat_open(struct kstat_files *f)
{
	f->netstat_fd = kstat_open_one("/proc/net/netstat");
	f->sockstat_fd = kstat_open_one("/proc/net/sockstat");
	return f->netstat_fd >= 0 || f->sockstat_fd >= 0 ? 0 : -1;
}

void kstat_close(struct kstat_files *f)
{
	if (f->netstat_fd >= 0)
		close(f->netstat_fd);
	if (f->sockstat_fd >= 0)
		close(f->sockstat_fd);
	f->netstat_fd = f->sockstat_fd = -1;
}

/* The whole file, NUL-terminated, into buf; -1 on a read error (errno) or when it does
 * not fit. */
static int kstat_pread(int fd, char *buf, size_t len)
{
	size_t got = 0;

	for (;;) {
		ssize_t n = pread(fd, buf + got, len - 1 - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		got += (size_t)n;
		if (n == 0 || got == len - 1)
			break;
	}
	buf[got] = '\0';
	if (got == len - 1) {
		errno = EFBIG;
		return -1;
	}
	return 0;
}

/* Reads one file and parses it; a failure is logged once per file. */
static void kstat_read_one(int fd, const char *path, int (*parse)(const char *, struct kstat *),
			   char *buf, struct kstat *k, int *reported)
{
	if (fd < 0)
		return;
	if (kstat_pread(fd, buf, KSTAT_BUF) < 0) {
		if (!*reported)
			log_warn("read %s: %s", path, strerror(errno));
		*reported = 1;
	} else if (parse(buf, k) < 0) {
		if (!*reported)
			log_warn("%s: no TCP counters in the expected format", path);
		*reported = 1;
	}
}

void kstat_read(const struct kstat_files *f, struct kstat *k)
{
	static int netstat_reported, sockstat_reported;
	char *buf = malloc(KSTAT_BUF);

	memset(k, 0, sizeof(*k));
	if (buf == NULL)
		return;
	kstat_read_one(f->netstat_fd, "/proc/net/netstat", kstat_parse_netstat, buf, k,
		       &netstat_reported);
	kstat_read_one(f->sockstat_fd, "/proc/net/sockstat", kstat_parse_sockstat, buf, k,
		       &sockstat_reported);
	free(buf);
}

/* One small sysctl file into buf (NUL-terminated); -1 when it cannot be read. */
static int read_small(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int rc;

	if (fd < 0)
		return -1;
	rc = kstat_pread(fd, buf, len);
	close(fd);
	return rc;
}

void kstat_read_limits(struct kstat_limits *l)
{
	static const char *const paths[] = {"/proc/sys/net/ipv4/tcp_max_orphans",
					    "/proc/sys/net/ipv4/tcp_mem"};
	int (*const parse[])(const char *, struct kstat_limits *) = {kstat_parse_max_orphans,
								     kstat_parse_tcp_mem};
	char buf[128];

	memset(l, 0, sizeof(*l));
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		if (read_small(paths[i], buf, sizeof(buf)) < 0)
			log_debug("%s: %s (a host-wide sysctl: only the initial network namespace "
				  "has it)",
				  paths[i], strerror(errno));
		else if (parse[i](buf, l) < 0)
			log_warn("%s: not in the expected format", paths[i]);
	}
}
