/* tcpinfo: what the server reads back from TCP_INFO. Apart from sock.c because glibc's
 * struct tcp_info stops before the fields needed here, and <linux/tcp.h>, which has
 * them, cannot be included beside <netinet/tcp.h>. */
#ifndef TEARDOWN_TCPINFO_H
#define TEARDOWN_TCPINFO_H

#include <stdint.h>

/* Bytes of our data the peer has acknowledged so far (tcpi_bytes_acked, Linux 4.1+):
 * it grows while the peer reads, and stops when it stops reading. 0, or -1 with errno
 * (ENOPROTOOPT on a kernel without the field). */
int tcpinfo_bytes_acked(int fd, uint64_t *acked);

#endif
