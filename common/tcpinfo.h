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

/* Connections waiting in a listening socket's accept queue now: for a socket in LISTEN the
 * kernel reports its accept backlog (sk_ack_backlog) in tcpi_unacked (and the queue's limit
 * in tcpi_sacked), see tcp_get_info() in net/ipv4/tcp.c. 0, or -1 with errno (EINVAL for
 * a socket that is not listening); nothing is written on failure. */
int tcpinfo_accept_queue(int lfd, uint32_t *queued);

#endif
