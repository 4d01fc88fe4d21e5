#include "tcpinfo.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netinet/in.h> /* IPPROTO_TCP */
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

int tcpinfo_bytes_acked(int fd, uint64_t *acked, uint32_t *mss)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	if (len < offsetof(struct tcp_info, tcpi_bytes_acked) + sizeof(ti.tcpi_bytes_acked)) {
		errno = ENOPROTOOPT; /* an older kernel's shorter struct */
		return -1;
	}
	*acked = ti.tcpi_bytes_acked;
	*mss = ti.tcpi_snd_mss;
	return 0;
}

/* TCP_LISTEN of the kernel's TCP state numbering (include/net/tcp_states.h); the name in
 * <netinet/tcp.h> cannot be included beside <linux/tcp.h>. */
#define TCPINFO_STATE_LISTEN 10

int tcpinfo_accept_queue(int lfd, uint32_t *queued)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	memset(&ti, 0, sizeof(ti));
	if (getsockopt(lfd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return -1;
	if (ti.tcpi_state != TCPINFO_STATE_LISTEN) {
		errno = EINVAL; /* tcpi_unacked means unacknowledged segments there */
		return -1;
	}
	*queued = ti.tcpi_unacked;
	return 0;
}
