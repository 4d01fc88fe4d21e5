#include "crashport.h"
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

struct crashports {
	const struct client_opts *o;
	const struct plan *plan;
	const struct crashport_plan *cp;
	int worker;
	uint32_t share, start;
	size_t nsrc;
	uint32_t used[]; /* [nsrc]: ports of the share taken so far, per source address */
};

uint32_t crashport_share(uint32_t nports, int worker, int nworkers)
{
	return (uint32_t)plan_share(nports, worker, nworkers);
}

uint16_t crashport_port(uint32_t lo, uint32_t nports, int worker, int nworkers, uint32_t start,
			uint32_t k)
{
	uint32_t share = crashport_share(nports, worker, nworkers);
	uint32_t index = (uint32_t)worker + (uint32_t)nworkers * ((start + k) % share);

	return (uint16_t)(lo + index);
}

/* How many source addresses crash connections bind: each of --sources, else one. */
static size_t source_count(const struct client_opts *o, const struct plan *p)
{
	return o->crash_srclen == 0 && p->nsources > 0 ? (size_t)p->nsources : 1;
}

/* Which source address (index into crashports.used) connection id binds. */
static size_t source_index(const struct client_opts *o, const struct plan *p, uint64_t id)
{
	if (source_count(o, p) == 1)
		return 0;
	return ntohl(plan_source(p, id)) - p->src_first;
}

/* The source address of connection id, port 0. */
static void source_addr(const struct client_opts *o, const struct plan *p,
			const struct crashport_plan *cp, uint64_t id, struct sockaddr_storage *ss,
			socklen_t *len)
{
	if (o->crash_srclen > 0) {
		memcpy(ss, &o->crash_src, sizeof(*ss));
		*len = o->crash_srclen;
	} else if (p->nsources > 0) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
		memset(ss, 0, sizeof(*ss));
		v4->sin_family = AF_INET;
		v4->sin_addr.s_addr = plan_source(p, id);
		*len = sizeof(*v4);
	} else {
		memcpy(ss, &cp->default_src, sizeof(*ss));
		*len = cp->default_srclen;
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

/* Worker w's first crash connection beyond its share of the ports of one source address,
 * in the order it opens them (the plan's), or UINT64_MAX when all fit; *need is how many
 * that source needs. -1 when out of memory. */
static int first_over(const struct client_opts *o, const struct plan *p, uint32_t share, int w,
		      uint64_t *need, uint64_t *over)
{
	struct plan_worker pw;
	struct plan_conn c;
	uint64_t n = plan_slots(p, w);

	if (plan_worker_init(&pw, p, w) < 0)
		return -1;
	memset(need, 0, source_count(o, p) * sizeof(*need));
	*over = UINT64_MAX;
	for (uint64_t k = 0; k < n && *over == UINT64_MAX; k++) {
		plan_next(&pw, &c);
		if (c.scenario == SCEN_CRASH &&
		    ++need[source_index(o, p, c.id)] == (uint64_t)share + 1)
			*over = c.id;
	}
	plan_worker_free(&pw);
	return 0;
}

/* A one-pass run knows its crash connections: each worker's, per source address, must
 * fit its share of the ports. 0, or -1 after saying why. */
static int check_one_pass(const struct client_opts *o, const struct plan *p,
			  const struct crashport_plan *cp)
{
	uint64_t *need = calloc(source_count(o, p), sizeof(*need)), over = UINT64_MAX;
	struct sockaddr_storage ss;
	socklen_t len;
	char a[INET6_ADDRSTRLEN], who[96] = "";
	uint32_t share = 0;
	int w;

	if (need == NULL)
		goto oom;
	for (w = 0; w < p->nworkers && over == UINT64_MAX; w++) {
		share = crashport_share(cp->range_n, w, p->nworkers);
		if (first_over(o, p, share, w, need, &over) < 0)
			goto oom;
	}
	if (over != UINT64_MAX) {
		source_addr(o, p, cp, over, &ss, &len);
		if (p->nworkers > 1)
			snprintf(who, sizeof(who), " (its share for worker %d of --procs %d)",
				 w - 1, p->nworkers);
		log_plain("load-client: refusing the run: %llu crash connections from %s need as "
			  "many source ports (a crash never reuses one within a run: its SYN "
			  "would reset the server's stale socket of the earlier crash), but "
			  "ip_local_port_range %u-%u gives %u%s: add --crash-source/--sources "
			  "addresses, or fewer --connections\n",
			  (unsigned long long)need[source_index(o, p, over)],
			  addr_text(&ss, a, sizeof(a)), cp->range_lo,
			  cp->range_lo + cp->range_n - 1, share, who);
	}
	free(need);
	return over == UINT64_MAX ? 0 : -1;
oom:
	free(need);
	log_error("out of memory");
	return -1;
}

int crashport_prepare(const struct client_opts *o, const struct plan *p, struct crashport_plan *cp)
{
	FILE *f = fopen(PORT_RANGE, "r");
	unsigned lo, hi;

	memset(cp, 0, sizeof(*cp));
	cp->range_lo = 32768; /* the kernel's default 32768-60999 */
	cp->range_n = 28232;
	if (f != NULL) {
		if (fscanf(f, "%u %u", &lo, &hi) == 2 && lo > 0 && lo <= hi && hi <= 65535) {
			cp->range_lo = lo;
			cp->range_n = hi - lo + 1;
		}
		fclose(f);
	}
	if (o->crash_srclen == 0 && p->nsources == 0 &&
	    sock_route_source((const struct sockaddr *)&o->addr, o->addrlen, &cp->default_src,
			      &cp->default_srclen) < 0) {
		log_error("crash: cannot find this host's source address towards %s: %s", o->server,
			  strerror(errno));
		return FAULT_ERROR;
	}
	if (o->duration_ms == 0 && check_one_pass(o, p, cp) < 0)
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

struct crashports *crashport_new(const struct client_opts *o, const struct plan *p,
				 const struct crashport_plan *cp, int worker)
{
	size_t nsrc = source_count(o, p);
	struct crashports *c = calloc(1, sizeof(*c) + nsrc * sizeof(c->used[0]));

	if (c == NULL)
		return NULL;
	c->o = o;
	c->plan = p;
	c->cp = cp;
	c->worker = worker;
	c->nsrc = nsrc;
	c->share = crashport_share(cp->range_n, worker, p->nworkers);
	c->start = c->share > 0 ? random_u32() % c->share : 0;
	return c;
}

void crashport_free(struct crashports *p)
{
	free(p);
}

int crashport_bind(struct crashports *p, int fd, uint64_t id)
{
	uint32_t *used = &p->used[source_index(p->o, p->plan, id)];
	struct sockaddr_storage ss;
	socklen_t len;

	source_addr(p->o, p->plan, p->cp, id, &ss, &len);
	/* A port someone else holds (EADDRINUSE) is skipped, used up like ours. */
	for (; *used < p->share; (*used)++) {
		sock_set_port(&ss, crashport_port(p->cp->range_lo, p->cp->range_n, p->worker,
						  p->plan->nworkers, p->start, *used));
		if (bind(fd, (const struct sockaddr *)&ss, len) == 0) {
			(*used)++;
			return 0;
		}
		if (errno != EADDRINUSE)
			return errno;
	}
	return FAIL_CRASH_PORTS;
}
