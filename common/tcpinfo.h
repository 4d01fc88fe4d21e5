/* tcpinfo: what the server reads back from TCP_INFO. Apart from sock.c because glibc's
 * struct tcp_info stops before the fields needed here, and <linux/tcp.h>, which has
 * them, cannot be included beside <netinet/tcp.h>. */
#ifndef TEARDOWN_TCPINFO_H
#define TEARDOWN_TCPINFO_H

#include <stdint.h>

/* Bytes of our data the peer has acknowledged so far (tcpi_bytes_acked, Linux 4.1+), and
 * the current send MSS. Acknowledged means taken into the peer's receive buffer: it grows
 * while the peer reads, and stops once the peer stops reading and its buffer is full.
 * 0, or -1 with errno (ENOPROTOOPT on a kernel without the field); nothing is written
 * on failure. */
int tcpinfo_bytes_acked(int fd, uint64_t *acked, uint32_t *mss);

#endif
