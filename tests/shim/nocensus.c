/* nocensus: an LD_PRELOAD shim for tests. socket(AF_NETLINK, ..., NETLINK_SOCK_DIAG) fails
 * with EACCES, as it would under a seccomp or LSM policy that denies sock_diag, so the
 * server starts without its census (common/census.c); every other socket() is the real one.
 * Built as build/shim/nocensus.so. */
#include <dlfcn.h>
#include <errno.h>
#include <linux/netlink.h>
#include <stddef.h>
#include <sys/socket.h>

int socket(int domain, int type, int protocol)
{
	static int (*real_socket)(int, int, int);

	if (domain == AF_NETLINK && protocol == NETLINK_SOCK_DIAG) {
		errno = EACCES;
		return -1;
	}
	if (real_socket == NULL)
		real_socket = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
	if (real_socket == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real_socket(domain, type, protocol);
}
