/* lab: helpers shared by the tests/lab programs (see lab.h for the contract). */
#include "lab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *lab_id = "?";
static int lab_is_quick;
static ino_t lab_host_netns;
static const char *lab_failed = "?";
static char lab_failed_buf[256];

/* --- program, rows, errors ------------------------------------------------------------ */

static int netns_ino(ino_t *ino)
{
	struct stat st;

	/* thread-self: setns()/unshare() move only the calling thread. */
	if (stat("/proc/thread-self/ns/net", &st) < 0)
		return lab_sysfail("stat(/proc/thread-self/ns/net)");
	*ino = st.st_ino;
	return 0;
}

void lab_init(int argc, char **argv, const char *id, const char *claim)
{
	lab_id = id;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--quick") == 0)
			lab_is_quick = 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (geteuid() != 0) {
		lab_row(id, claim, LAB_NUANCE, NULL, "skipped: needs root");
		exit(LAB_SKIP);
	}
	/* An EPIPE must come back as a return value, never kill the program. */
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR || netns_ino(&lab_host_netns) < 0)
		exit(lab_err("init"));
}

int lab_quick(void)
{
	return lab_is_quick;
}

void lab_add(struct lab_str *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->n >= sizeof(o->s) - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->s + o->n, sizeof(o->s) - o->n, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->n += (size_t)n < sizeof(o->s) - o->n ? (size_t)n : sizeof(o->s) - o->n - 1;
}

/* The row format uses '|' as separator and one line per row; trailing blanks go. */
static void put_field(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == ' ')
		n--;
	for (size_t i = 0; i < n; i++)
		putchar(s[i] == '|' ? '/' : s[i] == '\n' ? ' ' : s[i]);
}

void lab_row(const char *id, const char *claim, enum lab_verdict v, const char *why,
	     const char *observed)
{
	static const char *name[] = {"agrees", "differs", "nuance"};
	int skipped = strncmp(observed, "skipped", 7) == 0;

	printf("row|%s|", id);
	put_field(claim);
	putchar('|');
	put_field(observed);
	putchar('|');
	put_field(skipped ? "skipped" : name[v]);
	if (why && !skipped) {
		fputs(": ", stdout);
		put_field(why);
	}
	putchar('\n');
	fflush(stdout);
}

void lab_note(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "lab %s: ", lab_id);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int lab_timed_close(int *fd, int64_t *us)
{
	int64_t t0 = lab_now_us();
	int rc = close(*fd);

	*us = lab_now_us() - t0;
	*fd = -1;
	return rc < 0 ? lab_sysfail("close") : 0;
}

int lab_sysfail(const char *call)
{
	lab_failed = call;
	return -1;
}

int lab_err(const char *what)
{
	fprintf(stderr, "lab %s: %s: %s: %s\n", lab_id, what, lab_failed, strerror(errno));
	return 1;
}

/* --- time ----------------------------------------------------------------------------- */

int64_t lab_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void lab_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* --- namespaces, sysctls, commands ------------------------------------------------------ */

static int lo_up(void)
{
	struct ifreq ifr = {0};
	int fd, rc = -1;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lab_sysfail("socket(AF_INET, SOCK_DGRAM)");
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) < 0) {
		lab_sysfail("ioctl(SIOCGIFFLAGS, lo)");
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(fd, SIOCSIFFLAGS, &ifr) < 0) {
		lab_sysfail("ioctl(SIOCSIFFLAGS, lo up)");
		goto out;
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

int lab_netns_new(void)
{
	int fd;

	if (unshare(CLONE_NEWNET) < 0)
		return lab_sysfail("unshare(CLONE_NEWNET)");
	if (lo_up() < 0)
		return -1;
	/* Not O_CLOEXEC: `ip ... netns /proc/self/fd/N` in a child names this netns by it. */
	fd = open("/proc/thread-self/ns/net", O_RDONLY);
	if (fd < 0)
		return lab_sysfail("open(/proc/thread-self/ns/net)");
	return fd;
}

int lab_netns_enter(int nsfd)
{
	if (setns(nsfd, CLONE_NEWNET) < 0)
		return lab_sysfail("setns(CLONE_NEWNET)");
	return 0;
}

/* /proc/sys/net/... resolves to the netns of the thread that opens it. */
int lab_sysctl_set_str(const char *name, const char *value)
{
	size_t n = strlen(value);
	char path[256];
	ino_t ino;
	int fd, rc = -1;

	if (netns_ino(&ino) < 0)
		return -1;
	if (ino == lab_host_netns) {
		errno = EPERM;
		return lab_sysfail("sysctl write refused in the starting netns");
	}
	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return lab_sysfail("open(/proc/sys/...)");
	if (write(fd, value, n) != (ssize_t)n)
		lab_sysfail("write(/proc/sys/...)");
	else
		rc = 0;
	close(fd);
	return rc;
}

int lab_sysctl_set(const char *name, long value)
{
	char val[32];

	snprintf(val, sizeof(val), "%ld\n", value);
	return lab_sysctl_set_str(name, val);
}

int lab_sysctl_get(const char *name, long *value)
{
	char path[256], val[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/sys/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return lab_sysfail("open(/proc/sys/...)");
	n = read(fd, val, sizeof(val) - 1);
	close(fd);
	if (n <= 0)
		return lab_sysfail("read(/proc/sys/...)");
	val[n] = '\0';
	*value = strtol(val, NULL, 10);
	return 0;
}

static int sh_status(int status, const char *cmd)
{
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	snprintf(lab_failed_buf, sizeof(lab_failed_buf), "`%.200s` exited with status %d", cmd,
		 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	errno = ECHILD;
	return lab_sysfail(lab_failed_buf);
}

int lab_sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int status;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return lab_sysfail("fork");
	if (pid == 0) {
		/* The table is on stdout: whatever the command prints goes to the log. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return lab_sysfail("waitpid");
	return sh_status(status, cmd);
}

int lab_nft(const char *ruleset)
{
	FILE *f;
	int status;

	fflush(NULL);
	f = popen("nft -f - 1>&2", "w");
	if (!f)
		return lab_sysfail("popen(nft -f -)");
	fputs(ruleset, f);
	status = pclose(f);
	if (status < 0)
		return lab_sysfail("pclose(nft)");
	return sh_status(status, "nft -f -");
}

static int pair_connect(struct lab_pair *p, int lfd, const char *ip, uint16_t port, int sndbuf,
			int rcvbuf);

int lab_veth_open(struct lab_veth *v)
{
	v->ns_b = lab_netns_new();
	if (v->ns_b < 0)
		return -1;
	v->ns_a = lab_netns_new();
	if (v->ns_a < 0)
		return -1;
	/* The child `ip` inherits the fd: /proc/self/fd/N names namespace B for it. */
	if (lab_sh("ip link add va type veth peer name vb netns /proc/self/fd/%d", v->ns_b) < 0 ||
	    lab_sh("ip addr add %s/24 dev va && ip link set va up", LAB_IP_A) < 0)
		return -1;
	if (lab_netns_enter(v->ns_b) < 0 ||
	    lab_sh("ip addr add %s/24 dev vb && ip link set vb up", LAB_IP_B) < 0)
		return -1;
	return lab_netns_enter(v->ns_a);
}

int lab_veth_pair(struct lab_veth *v, struct lab_pair *p)
{
	uint16_t port;
	int lfd;

	p->a = p->b = -1;
	if (lab_netns_enter(v->ns_b) < 0)
		return -1;
	lfd = lab_listen(LAB_IP_B, 0, &port);
	if (lfd < 0)
		return -1;
	if (lab_netns_enter(v->ns_a) < 0) {
		close(lfd);
		return -1;
	}
	return pair_connect(p, lfd, LAB_IP_B, port, 0, 0);
}

/* --- sockets ----------------------------------------------------------------------------- */

static int addr_of(const char *ip, uint16_t port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &sa->sin_addr) != 1) {
		errno = EINVAL;
		return lab_sysfail("inet_pton");
	}
	return 0;
}

uint16_t lab_local_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
		return 0;
	return ntohs(sa.sin_port);
}

int lab_listen(const char *ip, uint16_t port, uint16_t *bound)
{
	return lab_listen_opt(ip, port, SO_REUSEADDR, bound);
}

int lab_listen_opt(const char *ip, uint16_t port, int reuse_opt, uint16_t *bound)
{
	struct sockaddr_in sa;
	int fd;

	if (addr_of(ip, port, &sa) < 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lab_sysfail("socket");
	if (lab_set_int(fd, SOL_SOCKET, reuse_opt, 1,
			reuse_opt == SO_REUSEPORT ? "setsockopt(SO_REUSEPORT)"
						  : "setsockopt(SO_REUSEADDR)") < 0)
		goto fail;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		lab_sysfail("bind");
		goto fail;
	}
	if (listen(fd, 64) < 0) {
		lab_sysfail("listen");
		goto fail;
	}
	*bound = lab_local_port(fd);
	return fd;
fail:
	close(fd);
	return -1;
}

static int bind_to(int fd, const char *ip, uint16_t port, int reuse)
{
	struct sockaddr_in sa;

	if (reuse && lab_set_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt(SO_REUSEADDR)") < 0)
		return -1;
	if (addr_of(ip, port, &sa) < 0)
		return -1;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return lab_sysfail("bind");
	return 0;
}

static int set_bufs(int fd, int sndbuf, int rcvbuf)
{
	if (sndbuf && lab_set_int(fd, SOL_SOCKET, SO_SNDBUF, sndbuf, "setsockopt(SO_SNDBUF)") < 0)
		return -1;
	if (rcvbuf && lab_set_int(fd, SOL_SOCKET, SO_RCVBUF, rcvbuf, "setsockopt(SO_RCVBUF)") < 0)
		return -1;
	return 0;
}

/* Buffers are set before connect()/listen(): the window scale is fixed at the handshake and
 * an accepted socket inherits the listener's buffer sizes. */
static int connect_with(const char *ip, uint16_t port, const char *bind_ip, uint16_t bind_port,
			int reuse, int sndbuf, int rcvbuf)
{
	struct sockaddr_in sa;
	int fd;

	if (addr_of(ip, port, &sa) < 0)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return lab_sysfail("socket");
	if (set_bufs(fd, sndbuf, rcvbuf) < 0)
		goto fail;
	if (bind_ip && bind_to(fd, bind_ip, bind_port, reuse) < 0)
		goto fail;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		lab_sysfail("connect");
		goto fail;
	}
	return fd;
fail : {
	int e = errno;
	close(fd);
	errno = e;
}
	return -1;
}

int lab_connect(const char *ip, uint16_t port, const char *bind_ip, uint16_t bind_port, int reuse)
{
	return connect_with(ip, port, bind_ip, bind_port, reuse, 0, 0);
}

int lab_accept(int lfd, int timeout_ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int n, fd;

	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return lab_sysfail("poll(listener)");
	if (n == 0) {
		errno = ETIMEDOUT;
		return lab_sysfail("accept (nothing within the deadline)");
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return lab_sysfail("accept4");
	return fd;
}

/* What both pair openers end with: a connects to the listener lfd (bound to port), b is
 * accepted from it; lfd is closed whatever happens, and so is the pair on failure. */
static int pair_connect(struct lab_pair *p, int lfd, const char *ip, uint16_t port, int sndbuf,
			int rcvbuf)
{
	p->a = connect_with(ip, port, NULL, 0, 0, sndbuf, rcvbuf);
	if (p->a < 0)
		goto fail;
	p->b = lab_accept(lfd, 2000);
	if (p->b < 0)
		goto fail;
	p->pa = lab_local_port(p->a);
	p->pb = port;
	close(lfd);
	return 0;
fail:
	lab_pair_close(p);
	close(lfd);
	return -1;
}

int lab_pair_open(struct lab_pair *p, const char *ip, int sndbuf, int rcvbuf)
{
	uint16_t port;
	int lfd;

	p->a = p->b = -1;
	lfd = lab_listen(ip, 0, &port);
	if (lfd < 0)
		return -1;
	if (set_bufs(lfd, sndbuf, rcvbuf) < 0) {
		close(lfd);
		return -1;
	}
	return pair_connect(p, lfd, ip, port, sndbuf, rcvbuf);
}

void lab_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void lab_pair_close(struct lab_pair *p)
{
	lab_close(&p->a);
	lab_close(&p->b);
}

int lab_set_int(int fd, int level, int opt, int value, const char *name)
{
	if (setsockopt(fd, level, opt, &value, sizeof(value)) < 0)
		return lab_sysfail(name);
	return 0;
}

int lab_set_linger(int fd, int onoff, int secs)
{
	struct linger l = {.l_onoff = onoff, .l_linger = secs};

	if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)) < 0)
		return lab_sysfail("setsockopt(SO_LINGER)");
	return 0;
}

int lab_set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return lab_sysfail("fcntl(F_GETFL)");
	fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	if (fcntl(fd, F_SETFL, fl) < 0)
		return lab_sysfail("fcntl(F_SETFL)");
	return 0;
}

int lab_tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t len = sizeof(ti);

	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return lab_sysfail("getsockopt(TCP_INFO)");
	return ti.tcpi_state;
}

const char *lab_state_name(int state)
{
	static const char *name[] = {"?",	   "ESTABLISHED", "SYN_SENT",  "SYN_RECV",
				     "FIN_WAIT_1", "FIN_WAIT_2",  "TIME_WAIT", "CLOSE",
				     "CLOSE_WAIT", "LAST_ACK",	  "LISTEN",    "CLOSING"};

	if (state < 0 || state >= (int)(sizeof(name) / sizeof(name[0])))
		return "?";
	return name[state];
}

int lab_fill(int fd, size_t *sent)
{
	static char buf[65536];
	ssize_t n;

	*sent = 0;
	for (;;) {
		n = send(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0) {
			*sent += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 0;
		return lab_sysfail("send (filling the buffers)");
	}
}

int lab_drain(int fd, int timeout_ms, size_t *got, int *err)
{
	static char buf[65536];
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;
	int r;

	*got = 0;
	for (;;) {
		r = poll(&p, 1, timeout_ms);
		if (r < 0)
			return lab_sysfail("poll (draining)");
		if (r == 0) {
			*err = ETIME;
			return 0;
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			*got += (size_t)n;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		*err = n == 0 ? 0 : errno;
		return 0;
	}
}

const char *lab_errname(int err)
{
	const char *s = strerrorname_np(err);

	return s ? s : "E?";
}

const char *lab_ret(char *buf, size_t len, ssize_t rc, int err)
{
	if (rc < 0)
		snprintf(buf, len, "-1 %s", lab_errname(err));
	else
		snprintf(buf, len, "%zd", rc);
	return buf;
}

int lab_wait_until(int (*cond)(void *), void *arg, int timeout_ms, const char *what)
{
	int64_t end = lab_now_us() + (int64_t)timeout_ms * 1000;
	int r;

	for (;;) {
		r = cond(arg);
		if (r < 0)
			return -1;
		if (r > 0)
			return 0;
		if (lab_now_us() > end) {
			errno = ETIMEDOUT;
			return lab_sysfail(what);
		}
		lab_sleep_ms(2);
	}
}

struct state_arg {
	int fd, state;
};

static int state_reached(void *arg)
{
	const struct state_arg *a = arg;
	int s = lab_tcp_state(a->fd);

	return s < 0 ? -1 : s == a->state;
}

int lab_wait_state(int fd, int state, int timeout_ms)
{
	struct state_arg a = {fd, state};

	return lab_wait_until(state_reached, &a, timeout_ms, "waiting for a TCP state");
}

int lab_wait_eof(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char c;
	int n;

	n = poll(&p, 1, timeout_ms);
	if (n < 0)
		return lab_sysfail("poll (waiting for the FIN)");
	if (n == 0) {
		errno = ETIMEDOUT;
		return lab_sysfail("poll (waiting for the FIN)");
	}
	n = (int)recv(fd, &c, 1, 0);
	if (n != 0) {
		if (n > 0)
			errno = EPROTO; /* data before the FIN */
		return lab_sysfail("recv (expected 0 at the FIN)");
	}
	return 0;
}

/* --- packets ----------------------------------------------------------------------------- */

static int cap_socket(const char *ifname)
{
	struct sockaddr_ll sll = {0};
	int fd, one = 1, big = 16 << 20;

	/* SOCK_DGRAM: the kernel strips the link header. ETH_P_ALL, not ETH_P_IP: packets a
	 * host sends reach only ETH_P_ALL taps (dev_queue_xmit_nit() walks ptype_all). */
	fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ALL));
	if (fd < 0)
		return lab_sysfail("socket(AF_PACKET)");
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = htons(ETH_P_ALL);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	if (sll.sll_ifindex == 0) {
		lab_sysfail("if_nametoindex");
		goto fail;
	}
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		lab_sysfail("bind(AF_PACKET)");
		goto fail;
	}
	/* Root may exceed rmem_max: a capture that overflows would lose the FIN we look for. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) < 0) {
		lab_sysfail("setsockopt(AF_PACKET)");
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

int lab_cap_open(struct lab_cap *c, const char *ifname, int keep_outgoing)
{
	struct timespec r, m;

	memset(c, 0, sizeof(*c));
	c->keep_outgoing = keep_outgoing;
	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	c->mono_minus_real_us =
	    ((int64_t)m.tv_sec - r.tv_sec) * 1000000 + (m.tv_nsec - r.tv_nsec) / 1000;
	c->fd = cap_socket(ifname);
	return c->fd < 0 ? -1 : 0;
}

static int64_t cap_time(const struct lab_cap *c, struct msghdr *mh)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;

			memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
			return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 +
			       c->mono_minus_real_us;
		}
	}
	return lab_now_us();
}

/* Decodes IPv4 + TCP; anything else is ignored. */
static void cap_decode(struct lab_cap *c, const uint8_t *p, size_t n, int64_t t)
{
	size_t ihl, thl, tot;
	struct lab_pkt *k;

	if (n < 20 || (p[0] >> 4) != 4 || p[9] != IPPROTO_TCP || c->n >= LAB_CAP_MAX)
		return;
	ihl = (size_t)(p[0] & 0x0f) * 4;
	tot = (size_t)p[2] << 8 | p[3];
	if (n < ihl + 20)
		return;
	thl = (size_t)(p[ihl + 12] >> 4) * 4;
	k = &c->pkt[c->n++];
	k->t_us = t;
	k->sport = (uint16_t)(p[ihl] << 8 | p[ihl + 1]);
	k->dport = (uint16_t)(p[ihl + 2] << 8 | p[ihl + 3]);
	k->seq = (uint32_t)p[ihl + 4] << 24 | (uint32_t)p[ihl + 5] << 16 |
		 (uint32_t)p[ihl + 6] << 8 | p[ihl + 7];
	k->flags = p[ihl + 13];
	k->len = tot > ihl + thl ? (uint32_t)(tot - ihl - thl) : 0;
	if (k->len)
		k->flags |= LAB_DATA;
}

int lab_cap_drain(struct lab_cap *c)
{
	uint8_t buf[128], ctl[256];
	struct sockaddr_ll from;
	struct iovec iov = {buf, sizeof(buf)};
	struct tpacket_stats st;
	socklen_t sl = sizeof(st);
	ssize_t n;

	for (;;) {
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};

		/* Headers are enough: a truncated read (MSG_TRUNC) still consumes the packet. */
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0)
			return lab_sysfail("recvmsg(AF_PACKET)");
		if (from.sll_protocol != htons(ETH_P_IP) ||
		    (from.sll_pkttype == PACKET_OUTGOING && !c->keep_outgoing))
			continue;
		cap_decode(c, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf),
			   cap_time(c, &mh));
	}
	if (getsockopt(c->fd, SOL_PACKET, PACKET_STATISTICS, &st, &sl) < 0)
		return lab_sysfail("getsockopt(PACKET_STATISTICS)");
	c->lost += st.tp_drops;
	return 0;
}

static int cap_match(const struct lab_pkt *k, uint16_t sport, uint16_t dport, unsigned flags)
{
	return (!sport || k->sport == sport) && (!dport || k->dport == dport) && (k->flags & flags);
}

int lab_cap_count(const struct lab_cap *c, uint16_t sport, uint16_t dport, unsigned flags)
{
	int n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += cap_match(&c->pkt[i], sport, dport, flags);
	return n;
}

const struct lab_pkt *lab_cap_first(const struct lab_cap *c, uint16_t sport, uint16_t dport,
				    unsigned flags)
{
	for (size_t i = 0; i < c->n; i++)
		if (cap_match(&c->pkt[i], sport, dport, flags))
			return &c->pkt[i];
	return NULL;
}

int lab_cap_wait(struct lab_cap *c, uint16_t sport, uint16_t dport, unsigned flags, int timeout_ms)
{
	int64_t end = lab_now_us() + (int64_t)timeout_ms * 1000;

	for (;;) {
		if (lab_cap_drain(c) < 0)
			return -1;
		if (lab_cap_count(c, sport, dport, flags) > 0)
			return 1;
		if (lab_now_us() > end)
			return 0;
		lab_sleep_ms(2);
	}
}

const char *lab_cap_teardown(const struct lab_cap *c, uint16_t sport, uint16_t dport)
{
	int fin = lab_cap_count(c, sport, dport, LAB_FIN) > 0;
	int rst = lab_cap_count(c, sport, dport, LAB_RST) > 0;

	return fin && rst ? "FIN then RST" : fin ? "FIN" : rst ? "RST" : "neither FIN nor RST";
}

void lab_cap_close(struct lab_cap *c)
{
	lab_close(&c->fd);
}

/* --- sock_diag ----------------------------------------------------------------------------- */

static int diag_request(int fd)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
	    .nlh = {.nlmsg_len = sizeof(req),
		    .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		    .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP},
	    .r = {.sdiag_family = AF_INET, .sdiag_protocol = IPPROTO_TCP, .idiag_states = ~0U},
	};

	if (send(fd, &req, sizeof(req), 0) < 0)
		return lab_sysfail("send(NETLINK_SOCK_DIAG)");
	return 0;
}

static void diag_fill(const struct inet_diag_msg *m, struct lab_diag *d)
{
	d->state = m->idiag_state;
	d->sport = ntohs(m->id.idiag_sport);
	d->dport = ntohs(m->id.idiag_dport);
	d->timer = m->idiag_timer;
	d->expires_ms = m->idiag_expires;
	d->inode = m->idiag_inode;
}

/* Walks every IPv4 TCP socket of the current netns; cb returns nonzero to keep it. */
static int diag_walk(int (*cb)(const struct lab_diag *, void *), void *arg)
{
	static char buf[65536];
	int fd, done = 0, rc = -1;
	struct lab_diag d;

	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return lab_sysfail("socket(NETLINK_SOCK_DIAG)");
	if (diag_request(fd) < 0)
		goto out;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (n < 0) {
			lab_sysfail("recv(NETLINK_SOCK_DIAG)");
			goto out;
		}
		for (; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE) {
				done = 1;
				break;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				errno = -((struct nlmsgerr *)NLMSG_DATA(h))->error;
				lab_sysfail("NETLINK_SOCK_DIAG answer");
				goto out;
			}
			diag_fill(NLMSG_DATA(h), &d);
			cb(&d, arg);
		}
	}
	rc = 0;
out:
	close(fd);
	return rc;
}

struct find_arg {
	uint16_t sport, dport;
	int found;
	struct lab_diag *out;
};

static int find_cb(const struct lab_diag *d, void *arg)
{
	struct find_arg *f = arg;

	if (d->sport != f->sport || d->dport != f->dport)
		return 0;
	*f->out = *d;
	f->found = 1;
	return 1;
}

int lab_diag_find(uint16_t sport, uint16_t dport, struct lab_diag *out)
{
	struct find_arg f = {sport, dport, 0, out};

	if (diag_walk(find_cb, &f) < 0)
		return -1;
	return f.found;
}

struct count_arg {
	int state, n;
};

static int count_cb(const struct lab_diag *d, void *arg)
{
	struct count_arg *c = arg;

	if (c->state < 0 || d->state == c->state)
		c->n++;
	return 0;
}

int lab_diag_count(int state)
{
	struct count_arg c = {state, 0};

	if (diag_walk(count_cb, &c) < 0)
		return -1;
	return c.n;
}

struct closed_arg {
	uint16_t closer, peer;
};

static int close_finished(void *arg)
{
	const struct closed_arg *c = arg;
	struct lab_diag d;
	int f;

	f = lab_diag_find(c->closer, c->peer, &d);
	if (f < 0)
		return -1;
	if (f && d.state != LAB_TIME_WAIT)
		return 0;
	f = lab_diag_find(c->peer, c->closer, &d);
	return f < 0 ? -1 : !f;
}

int lab_wait_closed(uint16_t closer_port, uint16_t peer_port, int timeout_ms)
{
	struct closed_arg c = {closer_port, peer_port};

	return lab_wait_until(close_finished, &c, timeout_ms,
			      "waiting for the close to finish (closer in TIME_WAIT or gone, "
			      "peer gone)");
}
