#include "crashport.h"
#include "driver.h"
#include "fault.h"
#include "log.h"
#include "result.h"
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define PORT_RANGE "/proc/sys/net/ipv4/ip_local_port_range"

/* Set by crashport_prepare in the parent; the workers inherit them. */
static uint32_t range_lo = 32768, range_n = 28232; /* the kernel's default 32768-60999 */
static struct sockaddr_storage default_src;
static socklen_t default_srclen;

struct crashports {
	const struct client_opts *o;
	int worker, nworkers;
	uint32_t share, start;
	size_t nsrc;
	uint32_t used[]; /* [nsrc]: ports of the share taken so far, per source address */
};

uint32_t crashport_share(uint32_t nports, int worker, int nworkers)
{
	return (uint32_t)driver_share(nports, worker, nworkers);
}

uint16_t crashport_port(uint32_t lo, uint32_t nports, int worker, int nworkers, uint32_t start,
			uint32_t k)
{
	uint32_t share = crashport_share(nports, worker, nworkers);
	uint32_t index = (uint32_t)worker + (uint32_t)nworkers * ((start + k) % share);

	return (uint16_t)(lo + index);
}

/* Which source address (index into crashports.used) connection id binds. */
static size_t source_index(const struct client_opts *o, uint64_t id)
{
	if (o->crash_srclen > 0 || o->nsources == 0)
		return 0;
	return ntohl(options_source(o, id)) - o->src_first;
}

/* The source address of connection id, port 0. */
static void source_addr(const struct client_opts *o, uint64_t id, struct sockaddr_storage *ss,
			socklen_t *len)
{
	if (o->crash_srclen > 0) {
		memcpy(ss, &o->crash_src, sizeof(*ss));
		*len = o->crash_srclen;
	} else if (o->nsources > 0) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
		memset(ss, 0, sizeof(*ss));
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = options_source(o, id);
		*len = sizeof(*v4);
	} else {
		memcpy(ss, &default_src, sizeof(*ss));
		*len = default_srclen;
	}
}

static const char *addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET
			    ? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
			    : (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;

	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)len) == NULL)
		snprintf(buf, len, "?");
	return buf;
}

/* The address the kernel would use as source towards the server. 0, or -1 with errno. */
static int find_default_source(const struct client_opts *o)
{
	return sock_route_source((const struct sockaddr *)&o->addr, o->addrlen, &default_src,
				 &default_srclen);
}

/* A one-pass run knows its crash connections: each worker's, per source address, must
 * fit its share of the ports. 0, or -1 after saying why. */
static int check_one_pass(const struct client_opts *o)
{
	size_t nsrc = o->crash_srclen == 0 && o->nsources > 0 ? (size_t)o->nsources : 1;
	uint64_t *need = calloc(nsrc, sizeof(*need)), *src_mix = NULL, over = UINT64_MAX;
	struct sockaddr_storage ss;
	socklen_t len;
	char a[INET6_ADDRSTRLEN], who[96] = "";
	uint32_t share = 0;
	int w;

	if (need == NULL) {
		log_error("out of memory");
		return -1;
	}
	if (options_mix_per_source(o) &&
	    (src_mix = calloc((size_t)o->nsources, sizeof(*src_mix))) == NULL) {
		free(need);
		log_error("out of memory");
		return -1;
	}
	/* The workers' connections in the order they open them, as driver.c numbers them
	 * (id = worker + procs * k) and deals the mix (options_scenario). */
	for (w = 0; w < (int)o->procs && over == UINT64_MAX; w++) {
		uint64_t n = driver_share((uint64_t)o->connections, w, (int)o->procs);
		share = crashport_share(range_n, w, (int)o->procs);
		memset(need, 0, nsrc * sizeof(*need));
		if (src_mix != NULL)
			memset(src_mix, 0, (size_t)o->nsources * sizeof(*src_mix));
		for (uint64_t k = 0; k < n; k++) {
			uint64_t id = (uint64_t)w + (uint64_t)o->procs * k;
			size_t s = source_index(o, id);
			if (options_scenario(o, src_mix, k, id) == SCEN_CRASH &&
			    ++need[s] == (uint64_t)share + 1)
				over = over == UINT64_MAX ? id : over;
		}
	}
	free(src_mix);
	if (over != UINT64_MAX) {
		source_addr(o, over, &ss, &len);
		if (o->procs > 1)
			snprintf(who, sizeof(who), " (its share for worker %d of --procs %lld)",
				 w - 1, (long long)o->procs);
		log_plain("load-client: refusing the run: %llu crash connections from %s need as "
			  "many source ports (a crash never reuses one within a run: its SYN "
			  "would reset the server's stale socket of the earlier crash), but "
			  "ip_local_port_range %u-%u gives %u%s: add --crash-source/--sources "
			  "addresses, or fewer --connections\n",
			  (unsigned long long)need[source_index(o, over)],
			  addr_text(&ss, a, sizeof(a)), range_lo, range_lo + range_n - 1, share,
			  who);
	}
	free(need);
	return over == UINT64_MAX ? 0 : -1;
}

int crashport_prepare(const struct client_opts *o)
{
	FILE *f = fopen(PORT_RANGE, "r");
	unsigned lo, hi;

	if (f != NULL) {
		if (fscanf(f, "%u %u", &lo, &hi) == 2 && lo > 0 && lo <= hi && hi <= 65535) {
			range_lo = lo;
			range_n = hi - lo + 1;
		}
		fclose(f);
	}
	if (o->crash_srclen == 0 && o->nsources == 0 && find_default_source(o) < 0) {
		log_error("crash: cannot find this host's source address towards %s: %s", o->server,
			  strerror(errno));
		return FAULT_ERROR;
	}
	if (o->duration_ms == 0 && check_one_pass(o) < 0)
		return FAULT_REFUSED;
	return FAULT_READY;
}

static uint32_t random_u32(void)
{
	uint32_t x;

	if (getrandom(&x, sizeof(x), GRND_NONBLOCK) == (ssize_t)sizeof(x))
		return x;
	return (uint32_t)time(NULL) ^ (uint32_t)getpid() * 2654435761u;
}

struct crashports *crashport_new(const struct client_opts *o, int worker, int nworkers)
{
	size_t nsrc = o->crash_srclen == 0 && o->nsources > 0 ? (size_t)o->nsources : 1;
	struct crashports *p = calloc(1, sizeof(*p) + nsrc * sizeof(p->used[0]));

	if (p == NULL)
		return NULL;
	p->o = o;
	p->worker = worker;
	p->nworkers = nworkers;
	p->nsrc = nsrc;
	p->share = crashport_share(range_n, worker, nworkers);
	p->start = p->share > 0 ? random_u32() % p->share : 0;
	return p;
}

void crashport_free(struct crashports *p)
{
	free(p);
}

int crashport_bind(struct crashports *p, int fd, uint64_t id)
{
	uint32_t *used = &p->used[source_index(p->o, id)];
	struct sockaddr_storage ss;
	socklen_t len;

	source_addr(p->o, id, &ss, &len);
	/* A port someone else holds (EADDRINUSE) is skipped, used up like ours. */
	for (; *used < p->share; (*used)++) {
		sock_set_port(&ss, crashport_port(range_lo, range_n, p->worker, p->nworkers, p->start,
					     *used));
		if (bind(fd, (const struct sockaddr *)&ss, len) == 0) {
			(*used)++;
			return 0;
		}
		if (errno != EADDRINUSE)
			return errno;
	}
	return FAIL_CRASH_PORTS;
}
