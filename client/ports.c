/* ports: see ports.h. */
#include "ports.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>

struct own_ports *own_ports_alloc(void)
{
	struct own_ports *p = mmap(NULL, sizeof(*p), PROT_READ | PROT_WRITE,
				   MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p; /* zeroed by the kernel */
}

void own_ports_free(struct own_ports *p)
{
	if (p != NULL)
		munmap(p, sizeof(*p));
}

void own_ports_add(struct own_ports *p, uint16_t port)
{
	__atomic_fetch_or(&p->bit[port / 8], (unsigned char)(1U << (port % 8)),
			  __ATOMIC_RELAXED);
}

void own_ports_add_fd(struct own_ports *p, int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return;
	if (ss.ss_family == AF_INET)
		own_ports_add(p, ntohs(((struct sockaddr_in *)&ss)->sin_port));
	else if (ss.ss_family == AF_INET6)
		own_ports_add(p, ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
}

int own_ports_has(const struct own_ports *p, uint16_t port)
{
	return (__atomic_load_n(&p->bit[port / 8], __ATOMIC_RELAXED) >> (port % 8)) & 1;
}

int own_ports_sock_ours(const struct own_ports *p, const struct sockaddr_storage *server,
			const struct census_sock_info *s)
{
	if (!own_ports_has(p, s->sport))
		return 0;
	if (server->ss_family == AF_INET)
		return s->family == AF_INET &&
		       s->dst[0] == ((const struct sockaddr_in *)server)->sin_addr.s_addr;
	if (server->ss_family == AF_INET6)
		return s->family == AF_INET6 &&
		       memcmp(s->dst, &((const struct sockaddr_in6 *)server)->sin6_addr, 16) == 0;
	return 0;
}
