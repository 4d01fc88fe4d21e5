/* Included by the fuzz harnesses and tests/unit/test_sock.c, linked with
 * -Wl,--wrap=getaddrinfo: every name is resolved numerically (AI_NUMERICHOST), so a
 * fuzzed "listen = somehost:80" or a test's unresolvable name never sends a DNS query off
 * this machine; a name that is not a numeric address fails as an unknown name would. */
#ifndef TEARDOWN_FUZZ_NO_DNS_H
#define TEARDOWN_FUZZ_NO_DNS_H

#include <netdb.h>
#include <string.h>

int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res);

int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		       struct addrinfo **res)
{
	struct addrinfo h;

	memset(&h, 0, sizeof(h));
	if (hints != NULL)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	return __real_getaddrinfo(node, service, &h, res);
}

#endif
