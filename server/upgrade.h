/* upgrade: starting a new generation of the server (SIGUSR2, or a reload whose changes
 * need new listeners) that takes over this one's listening sockets.
 *
 * The executable is the path resolved at start (upgrade_resolve_exe): after `make install`
 * replaced the file, /proc/self/exe still names the old, deleted inode, while the path
 * names the new program. The sockets go in sd_listen_fds(3)'s convention, the one systemd's
 * socket activation uses, so one adoption path (common/listenfds.c, main.c) serves both:
 * fds from 3 up, LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID, which must be the new
 * process's own pid and so is written after fork. The new process reports ready through
 * an inherited pipe (TEARDOWN_READY_FD, right after the sockets): one byte 'r' once it
 * listens (with workers: once every worker does); an exec that fails sends 'x' and its
 * errno; a process that ends before it is ready closes the pipe (EOF).
 *
 * The process that spawns may have a log writer thread, so between fork and exec the child
 * makes only async-signal-safe calls (dup2, fcntl, sigprocmask, getpid, execve, write,
 * _exit): the environment and argument vectors are built before fork. */
#ifndef TEARDOWN_SERVER_UPGRADE_H
#define TEARDOWN_SERVER_UPGRADE_H

#include <stddef.h>
#include <sys/types.h>

#define UPGRADE_READY_ENV      "TEARDOWN_READY_FD"
#define UPGRADE_GENERATION_ENV "TEARDOWN_GENERATION"

struct upgrade {
	pid_t pid; /* the new generation's first process; 0 when none is under way */
	int rfd;   /* the ready pipe's read end (nonblocking); -1 when none */
	int ready; /* it reported ready */
};

/* The absolute path of the executable named by argv0 (searched in PATH when it has no
 * '/'), symbolic links kept: a versioned install behind a link is upgraded by moving the
 * link. 0, or -1 (nothing executable found). */
int upgrade_resolve_exe(const char *argv0, char *out, size_t len);

/* Forks and executes exe with argv, the n sockets fds (named names[i]) as fds 3..3+n-1, and
 * TEARDOWN_GENERATION=generation. 0 with u->pid and u->rfd set, or -1 after logging. */
int upgrade_spawn(struct upgrade *u, const char *exe, char *const argv[], const int *fds,
		  const char *const *names, int n, unsigned generation);
/* Reads the ready pipe (when u->rfd is readable): 1 ready, 0 nothing yet, -1 failed
 * (why holds "exec ...: No such file or directory" or "exited before it was ready"). */
int upgrade_read(struct upgrade *u, char *why, size_t len);
/* Kills a new generation that is not ready (SIGKILL to its process group... to it), reaps
 * it, closes the pipe; u is cleared. */
void upgrade_abort(struct upgrade *u);
/* Closes the pipe and forgets the process (it is no longer this one's to watch, or it was
 * reaped). */
void upgrade_clear(struct upgrade *u);

/* In a new generation at start: the ready pipe's fd from the environment (unset), or -1.
 * A value that is not an open fd is ignored with a warning. */
int upgrade_take_ready_fd(void);
/* At start: this generation's number from the environment (unset): 1 when absent or not
 * a number. */
unsigned upgrade_take_generation(void);
/* In a new generation once it serves: 'r' to the pipe, which is closed. */
void upgrade_report_ready(int fd);

#endif
