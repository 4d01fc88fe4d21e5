#include "fault.h"
#include "log.h"
#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The run's table; made by pid `owner` (workers of --procs inherit the name, not the
 * duty to delete it). */
static char table[48];
static pid_t owner;

/* nft's stdout would mix into a --json report on ours: it goes to stderr. */
#define NFT	  "nft"
#define TO_STDERR " 1>&2"

/* ---- checks ---- */

/* TCP_REPAIR on a fresh socket is what crash needs, and tests the same capability
 * (CAP_NET_ADMIN over this network namespace) that nftables needs. 0, or -1 with errno. */
static int can_repair(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0), rc;

	if (fd < 0)
		return -1;
	rc = sock_set_repair(fd, 1);
	if (rc < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	close(fd);
	return 0;
}

/* Kernels since 6.x give the initial network namespace this fixed inode number
 * (PROC_NET_INIT_INO); namespaces made later get numbers from 0xF0000000 up, so no other
 * namespace can have it. */
#define NET_INIT_INO 0xEFFFFFF9UL

int fault_netns_differs(const char *self, const char *const *refs, size_t nrefs, char *why,
			size_t len)
{
	struct stat a, b;
	int err = ENOENT;

	if (stat(self, &a) < 0) {
		snprintf(why, len, "cannot read %s: %s", self, strerror(errno));
		return -1;
	}
	if ((unsigned long)a.st_ino == NET_INIT_INO) {
		snprintf(why, len,
			 "this is the initial network namespace (%s has its fixed inode number), "
			 "and the client never drops traffic in the host's namespace: run it in "
			 "one of its own, e.g. `ip netns exec NS load-client ...`",
			 self);
		return -1;
	}
	for (size_t i = 0; i < nrefs; i++) {
		if (stat(refs[i], &b) < 0) {
			err = errno;
			continue;
		}
		if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
			return 0;
		snprintf(why, len,
			 "this is the initial network namespace (%s is %s), and the client never "
			 "drops traffic in the host's namespace: run it in one of its own, e.g. "
			 "`ip netns exec NS load-client ...`",
			 self, refs[i]);
		return -1;
	}
	snprintf(why, len, "cannot tell whether this is the initial network namespace (%s: %s)",
		 nrefs > 0 ? refs[0] : "no reference", strerror(err));
	return -1;
}

/* The initial namespace is pid 1's; where /proc/1 may not be read (a process with more
 * capabilities than ours), kthreadd's (pid 2 outside a pid namespace): kernel threads
 * always live in the initial namespace. */
static int netns_check(char *why, size_t len)
{
	const char *refs[2] = {"/proc/1/ns/net", NULL};
	size_t n = 1;
	char comm[32] = "";
	FILE *f = fopen("/proc/2/comm", "r");

	if (f != NULL) {
		if (fgets(comm, sizeof(comm), f) != NULL && strcmp(comm, "kthreadd\n") == 0)
			refs[n++] = "/proc/2/ns/net";
		fclose(f);
	}
	return fault_netns_differs("/proc/self/ns/net", refs, n, why, len);
}

static int have_nft(void)
{
	int st = system("command -v " NFT " >/dev/null 2>&1");

	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- the table ---- */

static void signals_mask(int how)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigprocmask(how, &set, NULL);
}

void fault_signals(int blocked)
{
	if (table[0] != '\0')
		signals_mask(blocked ? SIG_BLOCK : SIG_UNBLOCK);
}

int fault_table_script(char *buf, size_t len, const char *name, const struct sockaddr *sa)
{
	char addr[INET6_ADDRSTRLEN];
	const char *ip, *type;
	int port, n;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof(addr));
		port = ntohs(v4->sin_port);
		ip = "ip";
		type = "ipv4_addr";
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof(addr));
		port = ntohs(v6->sin6_port);
		ip = "ip6";
		type = "ipv6_addr";
	} else {
		return -1;
	}
	/* add + delete first: a table left by a killed client of the same pid goes. */
	n = snprintf(buf, len,
		     "add table inet %s\n"
		     "delete table inet %s\n"
		     "table inet %s {\n"
		     "\tcounter from_server {\n\t}\n"
		     "\tcounter to_server {\n\t}\n"
		     "\tset dead {\n\t\ttype %s . inet_service\n\t}\n"
		     "\tchain output {\n"
		     "\t\ttype filter hook output priority filter; policy accept;\n"
		     "\t\t%s daddr %s tcp dport %d %s saddr . tcp sport @dead counter name "
		     "to_server drop\n"
		     "\t}\n"
		     "\tchain input {\n"
		     "\t\ttype filter hook input priority filter; policy accept;\n"
		     "\t\t%s saddr %s tcp sport %d %s daddr . tcp dport @dead counter name "
		     "from_server drop\n"
		     "\t}\n"
		     "}\n",
		     name, name, name, type, ip, addr, port, ip, ip, addr, port, ip);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Runs `nft -f -` with script on its stdin. 0, or -1. */
static int nft_script(const char *script)
{
	FILE *p = popen(NFT " -f -" TO_STDERR, "w");
	int st;

	if (p == NULL)
		return -1;
	fputs(script, p);
	st = pclose(p);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int make_table(const struct client_opts *o)
{
	char script[2048];

	snprintf(table, sizeof(table), "load_client_%ld", (long)getpid());
	if (fault_table_script(script, sizeof(script), table, (const struct sockaddr *)&o->addr) <
	    0) {
		log_error("vanish: cannot write the nftables rules for %s", o->server);
		table[0] = '\0';
		return -1;
	}
	signals_mask(SIG_BLOCK); /* until the loop handles them (fault_signals) */
	if (nft_script(script) < 0) {
		log_error("vanish: nft could not create table inet %s (its message is above)",
			  table);
		table[0] = '\0';
		signals_mask(SIG_UNBLOCK);
		return -1;
	}
	owner = getpid();
	log_info("vanish: nftables table inet %s drops the packets of vanished connections; "
		 "deleted at exit",
		 table);
	return 0;
}

int fault_check(const struct client_opts *o)
{
	int crash = mix_runs(&o->mix, SCEN_CRASH), vanish = mix_runs(&o->mix, SCEN_VANISH);

	if (!crash && !vanish)
		return FAULT_READY;
	if (can_repair(o->addr.ss_family) < 0) {
		log_plain("load-client: skipped: needs CAP_NET_ADMIN (%s; TCP_REPAIR: %s)\n",
			  crash ? "crash closes its sockets in TCP_REPAIR mode"
				: "vanish installs nftables rules",
			  strerror(errno));
		return FAULT_SKIPPED;
	}
	return FAULT_READY;
}

int fault_prepare(const struct client_opts *o)
{
	char why[512];

	if (!mix_runs(&o->mix, SCEN_VANISH))
		return FAULT_READY;
	if (netns_check(why, sizeof(why)) < 0) {
		log_plain("load-client: refusing --scenario vanish: %s\n", why);
		return FAULT_REFUSED;
	}
	if (!have_nft()) {
		log_plain("load-client: skipped: vanish needs the nft command (nftables)\n");
		return FAULT_SKIPPED;
	}
	return make_table(o) < 0 ? FAULT_ERROR : FAULT_READY;
}

void fault_teardown(void)
{
	char cmd[128];
	int st;

	if (table[0] == '\0' || owner != getpid())
		return;
	snprintf(cmd, sizeof(cmd), NFT " delete table inet %s" TO_STDERR, table);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		log_error("vanish: could not delete nftables table inet %s: delete it with `%s`",
			  table, cmd);
	table[0] = '\0';
	signals_mask(SIG_UNBLOCK);
}

/* ---- elements ---- */

int fault_element(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	int port, n;

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -1;
	if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *v4 = (const struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &v4->sin_addr, addr, sizeof(addr));
		port = ntohs(v4->sin_port);
	} else {
		const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &v6->sin6_addr, addr, sizeof(addr));
		port = ntohs(v6->sin6_port);
	}
	n = snprintf(buf, len, "%s . %d", addr, port);
	if (n < 0 || (size_t)n >= len) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static void elements(FILE *p, const char *verb, char *const *e, size_t n)
{
	if (n == 0)
		return;
	fprintf(p, "%s element inet %s dead { ", verb, table);
	for (size_t i = 0; i < n; i++)
		fprintf(p, "%s%s", i ? ", " : "", e[i]);
	fprintf(p, " }\n");
}

int fault_update(char *const *add, size_t nadd, char *const *del, size_t ndel)
{
	FILE *p;
	int st;

	if (table[0] == '\0') {
		errno = ENOENT;
		return -1;
	}
	if (nadd == 0 && ndel == 0)
		return 0;
	p = popen(NFT " -f -" TO_STDERR, "w");
	if (p == NULL)
		return -1;
	elements(p, "delete", del, ndel);
	elements(p, "add", add, nadd);
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* ---- counters ---- */

int fault_parse_packets(const char *text, uint64_t *packets)
{
	const char *p = strstr(text, "packets ");
	char *end;

	if (p == NULL)
		return -1;
	p += strlen("packets ");
	if (*p < '0' || *p > '9')
		return -1;
	errno = 0;
	*packets = strtoull(p, &end, 10);
	return errno == 0 && (*end == ' ' || *end == '\n' || *end == '\0') ? 0 : -1;
}

static int read_counter(const char *name, uint64_t *packets)
{
	char cmd[160], text[1024];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), NFT " list counter inet %s %s", table, name);
	p = popen(cmd, "r");
	if (p == NULL)
		return -1;
	n = fread(text, 1, sizeof(text) - 1, p);
	text[n] = '\0';
	while (fread(cmd, 1, sizeof(cmd), p) > 0) /* the rest, so nft is not cut off */
		;
	st = pclose(p);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return -1;
	return fault_parse_packets(text, packets);
}

int fault_counters(uint64_t *from_server, uint64_t *to_server)
{
	if (table[0] == '\0')
		return -1;
	if (read_counter("from_server", from_server) < 0 ||
	    read_counter("to_server", to_server) < 0)
		return -1;
	return 0;
}
