/* Claim 4: killing the process (Ctrl+C, kill, a crash) or letting it exit without close()
 * still closes its connections normally, with a FIN.
 *
 * A child process connects, then dies in one of several ways; the parent looks at what the
 * child's port put on the wire and at its own recv(). When a process dies the kernel
 * closes its fds (do_exit -> exit_files), which runs the same tcp_close() as close(): so
 * the answer should match close(), including its RST when unread data is thrown away. */
#include "lab.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define ID "4"
#define CLAIM                                                                                      \
	"Killing the process (SIGKILL, Ctrl+C, crash) or exiting without close() still closes "    \
	"the connection normally with a FIN"

enum death { BY_SIGKILL, BY_SIGINT, BY_CRASH, BY_EXIT, BY_SIGKILL_UNREAD, NDEATH };
static const char *death_name[] = {"SIGKILL", "SIGINT", "crash (SIGSEGV)", "exit() without close()",
				   "SIGKILL with 100 unread bytes"};

struct outcome {
	const char *wire;
	ssize_t rc;
	int err;
	int status;
};

/* The child: connect, (wait for data to be queued, unread), say ready, then die on cue. */
static void child(pid_t parent, uint16_t port, enum death how, int ready_w, int go_r)
{
	struct pollfd pf;
	char c = 0;
	int fd;

	/* A crash here must not leave a core file behind; and if the parent dies (killed by
	 * the driver's timeout) this child must not outlive it holding the namespace. */
	if (prctl(PR_SET_DUMPABLE, 0) < 0 || prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 ||
	    getppid() != parent)
		_exit(lab_err("child prctl"));
	fd = lab_connect("127.0.0.1", port, NULL, 0, 0);
	if (fd < 0)
		_exit(lab_err("child connect"));
	pf = (struct pollfd){.fd = fd, .events = POLLIN};
	if (how == BY_SIGKILL_UNREAD && poll(&pf, 1, 2000) != 1)
		_exit(lab_err("child waiting for data"));
	if (write(ready_w, &c, 1) != 1 || read(go_r, &c, 1) != 1)
		_exit(3);
	if (how == BY_CRASH)
		*(volatile int *)NULL = 1;
	if (how == BY_EXIT)
		_exit(0);
	pause();
	_exit(4);
}

static uint16_t peer_port(int fd)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);

	if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0)
		return 0;
	return ntohs(sa.sin_port);
}

/* Parent side once the child is connected: queue data if asked, then make it die. */
static int kill_child(pid_t pid, int fd, enum death how, int ready_r, int go_w)
{
	char c = 0, data[100] = {0};

	if (how == BY_SIGKILL_UNREAD && send(fd, data, sizeof(data), 0) != (ssize_t)sizeof(data))
		return lab_sysfail("send (data the child will not read)");
	if (read(ready_r, &c, 1) != 1)
		return lab_sysfail("read (child ready)");
	if (write(go_w, &c, 1) != 1)
		return lab_sysfail("write (go)");
	if (how == BY_SIGKILL || how == BY_SIGKILL_UNREAD)
		return kill(pid, SIGKILL) < 0 ? lab_sysfail("kill(SIGKILL)") : 0;
	if (how == BY_SIGINT)
		return kill(pid, SIGINT) < 0 ? lab_sysfail("kill(SIGINT)") : 0;
	return 0;
}

static int observe(struct lab_cap *cap, int fd, pid_t pid, struct outcome *o)
{
	uint16_t cport = peer_port(fd), myport = lab_local_port(fd);
	struct pollfd pf = {.fd = fd, .events = POLLIN};
	char c;

	if (waitpid(pid, &o->status, 0) < 0)
		return lab_sysfail("waitpid");
	if (poll(&pf, 1, 2000) < 0)
		return lab_sysfail("poll");
	o->rc = recv(fd, &c, 1, MSG_DONTWAIT);
	o->err = errno;
	if (lab_cap_wait(cap, cport, myport, LAB_FIN | LAB_RST, 500) < 0)
		return -1;
	o->wire = lab_cap_teardown(cap, cport, myport);
	return 0;
}

static int run(struct lab_cap *cap, enum death how, struct outcome *o)
{
	int ready[2] = {-1, -1}, go[2] = {-1, -1}, lfd, fd = -1, rc = -1;
	uint16_t port;
	pid_t pid, parent;

	if ((lfd = lab_listen("127.0.0.1", 0, &port)) < 0)
		return -1;
	if (pipe(ready) < 0 || pipe(go) < 0) {
		lab_sysfail("pipe");
		goto out;
	}
	fflush(NULL);
	parent = getpid();
	if ((pid = fork()) < 0) {
		lab_sysfail("fork");
		goto out;
	}
	if (pid == 0)
		child(parent, port, how, ready[1], go[0]);
	if ((fd = lab_accept(lfd, 2000)) >= 0 && kill_child(pid, fd, how, ready[0], go[1]) == 0 &&
	    observe(cap, fd, pid, o) == 0) {
		rc = 0;
	} else {
		/* Best effort: the failure is already recorded; do not leave the child behind. */
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
out:
	lab_close(&ready[0]);
	lab_close(&ready[1]);
	lab_close(&go[0]);
	lab_close(&go[1]);
	lab_close(&fd);
	close(lfd);
	return rc;
}

static const char *how_died(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status))
		snprintf(buf, len, "died by %s", sigabbrev_np(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited %d", WEXITSTATUS(status));
	return buf;
}

int main(int argc, char **argv)
{
	struct outcome o[NDEATH];
	static struct lab_cap cap;
	struct lab_str s = {0};
	int fins = 0, unread_rst;
	char r[32], d[64];

	lab_init(argc, argv, ID, CLAIM);
	if (lab_netns_new() < 0 || lab_cap_open(&cap, "lo", 0) < 0)
		return lab_err("setup");
	for (int i = 0; i < NDEATH; i++) {
		if (run(&cap, (enum death)i, &o[i]) < 0)
			return lab_err(death_name[i]);
		lab_add(&s, "%s (%s): kernel sent %s, peer recv()=%s. ", death_name[i],
			how_died(o[i].status, d, sizeof(d)), o[i].wire,
			lab_ret(r, sizeof(r), o[i].rc, o[i].err));
		fins += i != BY_SIGKILL_UNREAD && strcmp(o[i].wire, "FIN") == 0;
	}
	unread_rst = strcmp(o[BY_SIGKILL_UNREAD].wire, "RST") == 0;
	lab_row(ID, CLAIM,
		fins < NDEATH - 1 ? LAB_DIFFERS
		: unread_rst	  ? LAB_NUANCE
				  : LAB_AGREES,
		fins == NDEATH - 1 && unread_rst
		    ? "a FIN, unless the dead process left unread data: then RST, as with close()"
		    : NULL,
		s.s);
	lab_cap_close(&cap);
	return 0;
}
