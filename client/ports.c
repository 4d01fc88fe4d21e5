/* ports: see ports.h. */
#include "ports.h"
#include "sock.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/mman.h>

#define PORT_BYTES (65536 / 8)

/* An address as census_sock_info has it: IPv4 in a[0], network byte order. */
struct addr {
	int family; /* AF_UNSPEC: unknown (matches any address) */
	uint32_t a[4];
};

struct own_ports {
	size_t size;	    /* of the mapping */
	struct addr server; /* the remote address of every socket of the run */
	uint32_t src_first; /* --sources: slots 0 .. nsrc - 1 (host byte order) */
	uint32_t nsrc;
	struct addr crash;    /* slot nsrc (family 0: none) */
	struct addr route;    /* slot nsrc + 1: the route's source (AF_UNSPEC: unknown) */
	unsigned char bits[]; /* (nsrc + 2) * PORT_BYTES */
};

static void addr_from(struct addr *x, const struct sockaddr_storage *ss)
{
	memset(x, 0, sizeof(*x));
	x->family = ss->ss_family;
	if (ss->ss_family == AF_INET)
		x->a[0] = ((const struct sockaddr_in *)ss)->sin_addr.s_addr;
	else if (ss->ss_family == AF_INET6)
		memcpy(x->a, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
}

static int addr_eq(const struct addr *x, int family, const uint32_t a[4])
{
	return x->family == family && memcmp(x->a, a, family == AF_INET ? 4 : 16) == 0;
}

/* The bitmap of a source address, or NULL when the run does not send from it. */
static unsigned char *slot_of(const struct own_ports *p, int family, const uint32_t a[4])
{
	unsigned char *bits = (unsigned char *)p->bits;

	if (family == AF_INET && ntohl(a[0]) - p->src_first < p->nsrc)
		return bits + (size_t)(ntohl(a[0]) - p->src_first) * PORT_BYTES;
	if (addr_eq(&p->crash, family, a))
		return bits + (size_t)p->nsrc * PORT_BYTES;
	if (p->route.family == AF_UNSPEC || addr_eq(&p->route, family, a))
		return bits + (size_t)(p->nsrc + 1) * PORT_BYTES;
	return NULL;
}

struct own_ports *own_ports_alloc(const struct client_opts *o)
{
	size_t nsrc = o->nsources > 0 ? (size_t)o->nsources : 0;
	size_t size = sizeof(struct own_ports) + (nsrc + 2) * PORT_BYTES;
	struct sockaddr_storage route;
	socklen_t len;
	struct own_ports *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED)
		return NULL; /* zeroed by the kernel */
	p->size = size;
	addr_from(&p->server, &o->addr);
	p->src_first = o->src_first;
	p->nsrc = (uint32_t)nsrc;
	if (o->crash_srclen > 0)
		addr_from(&p->crash, &o->crash_src);
	/* Unknown (no route yet): the connections without a source of their own are then
	 * matched by port alone. */
	if (sock_route_source((const struct sockaddr *)&o->addr, o->addrlen, &route, &len) == 0)
		addr_from(&p->route, &route);
	return p;
}

void own_ports_free(struct own_ports *p)
{
	if (p != NULL)
		munmap(p, p->size);
}

void own_ports_add_fd(struct own_ports *p, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	struct addr x;
	unsigned char *bits;
	uint16_t port;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	addr_from(&x, &ss);
	if (x.family == AF_INET)
		port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (x.family == AF_INET6)
		port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		return;
	bits = slot_of(p, x.family, x.a);
	if (bits != NULL)
		__atomic_fetch_or(&bits[port / 8], (unsigned char)(1U << (port % 8)),
				  __ATOMIC_RELAXED);
}

int own_ports_sock_ours(const struct own_ports *p, const struct census_sock_info *s)
{
	const unsigned char *bits;

	if (!addr_eq(&p->server, s->family, s->dst))
		return 0;
	bits = slot_of(p, s->family, s->src);
	return bits != NULL &&
	       ((__atomic_load_n(&bits[s->sport / 8], __ATOMIC_RELAXED) >> (s->sport % 8)) & 1);
}
