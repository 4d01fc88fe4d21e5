#include "upgrade.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define PID_DIGITS 24

static int upgrade_executable(const char *path)
{
	return access(path, X_OK) == 0;
}

int upgrade_resolve_exe(const char *argv0, char *out, size_t len)
{
	char cwd[PATH_MAX];
	const char *path = getenv("PATH");

	if (argv0[0] == '/')
		return snprintf(out, len, "%s", argv0) < (int)len ? 0 : -1;
	if (strchr(argv0, '/') != NULL) {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return -1;
		return snprintf(out, len, "%s/%s", cwd, argv0) < (int)len ? 0 : -1;
	}
	while (path != NULL && *path != '\0') {
		const char *colon = strchr(path, ':');
		int dirlen = colon ? (int)(colon - path) : (int)strlen(path);

		if (dirlen > 0 && snprintf(out, len, "%.*s/%s", dirlen, path, argv0) < (int)len &&
		    out[0] == '/' && upgrade_executable(out))
			return 0;
		path = colon ? colon + 1 : NULL;
	}
	return -1;
}

/* Whether an environment entry is one the new generation gets from us instead. */
static int upgrade_ours(const char *e)
{
	static const char *const names[] = {"LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=",
					    UPGRADE_READY_ENV "=", UPGRADE_GENERATION_ENV "="};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return 1;
	return 0;
}

/* The environment of the new generation, built before fork: ours without the variables
 * above, then LISTEN_FDS, LISTEN_FDNAMES, TEARDOWN_READY_FD and LISTEN_PID last, whose
 * digits the child writes into *pid_digits. One allocation (free it with free()). */
static char **upgrade_env(const char *const *names, int n, unsigned generation, char **pid_digits)
{
	size_t count = 0, extra = 64 + PID_DIGITS, at;
	char **env, *text;
	int k = 0;

	for (char **e = environ; *e != NULL; e++)
		count++;
	for (int i = 0; i < n; i++)
		extra += strlen(names[i]) + 1;
	env = malloc((count + 6) * sizeof(char *) + extra + 64);
	if (env == NULL)
		return NULL;
	for (char **e = environ; *e != NULL; e++)
		if (!upgrade_ours(*e))
			env[k++] = *e;
	text = (char *)(env + count + 6);
	at = 0;
	env[k++] = text + at;
	at += (size_t)sprintf(text + at, "LISTEN_FDS=%d", n) + 1;
	env[k++] = text + at;
	at += (size_t)sprintf(text + at, "LISTEN_FDNAMES=");
	for (int i = 0; i < n; i++)
		at += (size_t)sprintf(text + at, "%s%s", i ? ":" : "", names[i]);
	at++;
	env[k++] = text + at;
	at += (size_t)sprintf(text + at, UPGRADE_READY_ENV "=%d", 3 + n) + 1;
	env[k++] = text + at;
	at += (size_t)sprintf(text + at, UPGRADE_GENERATION_ENV "=%u", generation) + 1;
	env[k++] = text + at;
	at += (size_t)sprintf(text + at, "LISTEN_PID=");
	*pid_digits = text + at;
	env[k] = NULL;
	return env;
}

/* Async-signal-safe decimal. */
static void upgrade_itoa(long v, char *out)
{
	char tmp[PID_DIGITS];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0 && n < PID_DIGITS - 1);
	while (n > 0)
		*out++ = tmp[--n];
	*out = '\0';
}

/* In the child, async-signal-safe calls only. Each fd is first copied above the target
 * range (3..3+n), so moving one into place never overwrites another still to be moved;
 * dup2 leaves the targets without FD_CLOEXEC. */
static void upgrade_child(const char *exe, char *const argv[], char **env, char *pid_digits,
			  const int *fds, int n, int wfd)
{
	int tmp[17], e;
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL); /* the supervisor blocks signals it waits for */
	for (int i = 0; i <= n; i++) {
		tmp[i] = fcntl(i < n ? fds[i] : wfd, F_DUPFD_CLOEXEC, 4 + n);
		if (tmp[i] < 0)
			goto fail;
	}
	for (int i = 0; i <= n; i++)
		if (dup2(tmp[i], 3 + i) < 0)
			goto fail;
	wfd = 3 + n;
	upgrade_itoa((long)getpid(), pid_digits);
	execve(exe, argv, env);
fail:
	e = errno;
	if (write(wfd, "x", 1) == 1 && write(wfd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		_exit(127);
	_exit(127);
}

int upgrade_spawn(struct upgrade *u, const char *exe, char *const argv[], const int *fds,
		  const char *const *names, int n, unsigned generation)
{
	char *pid_digits = NULL, **env;
	int p[2];
	pid_t pid;

	if (n > 16) {
		log_error("upgrade: %d sockets to pass, at most 16", n);
		return -1;
	}
	env = upgrade_env(names, n, generation, &pid_digits);
	if (env == NULL) {
		log_error("upgrade: out of memory");
		return -1;
	}
	if (pipe2(p, O_CLOEXEC) < 0) {
		log_error("upgrade: pipe2: %s", strerror(errno));
		free(env);
		return -1;
	}
	pid = fork();
	if (pid == 0)
		upgrade_child(exe, argv, env, pid_digits, fds, n, p[1]);
	free(env);
	close(p[1]);
	if (pid < 0) {
		log_error("upgrade: fork: %s", strerror(errno));
		close(p[0]);
		return -1;
	}
	if (fcntl(p[0], F_SETFL, O_NONBLOCK) < 0)
		log_warn("upgrade: the ready pipe stays blocking: %s", strerror(errno));
	u->pid = pid;
	u->rfd = p[0];
	u->ready = 0;
	return 0;
}

int upgrade_read(struct upgrade *u, char *why, size_t len)
{
	char c = 0;
	int e = 0;
	ssize_t k = read(u->rfd, &c, 1);

	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k == 1 && c == 'r') {
		u->ready = 1;
		return 1;
	}
	if (k == 1 && c == 'x' && read(u->rfd, &e, sizeof(e)) == (ssize_t)sizeof(e))
		snprintf(why, len, "cannot execute it: %s", strerror(e));
	else if (k < 0)
		snprintf(why, len, "reading its ready pipe: %s", strerror(errno));
	else
		snprintf(why, len, "exited before it was ready");
	return -1;
}

void upgrade_clear(struct upgrade *u)
{
	if (u->rfd >= 0)
		close(u->rfd);
	u->rfd = -1;
	u->pid = 0;
	u->ready = 0;
}

void upgrade_abort(struct upgrade *u)
{
	if (u->pid > 0) {
		kill(u->pid, SIGKILL);
		while (waitpid(u->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	upgrade_clear(u);
}

int upgrade_take_ready_fd(void)
{
	const char *s = getenv(UPGRADE_READY_ENV);
	char *end;
	long v;

	if (s == NULL)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	unsetenv(UPGRADE_READY_ENV);
	if (errno != 0 || end == s || *end != '\0' || v < 3 || v > INT_MAX ||
	    fcntl((int)v, F_SETFD, FD_CLOEXEC) < 0) {
		log_warn("%s is not an open descriptor: no ready report", UPGRADE_READY_ENV);
		return -1;
	}
	return (int)v;
}

unsigned upgrade_take_generation(void)
{
	const char *s = getenv(UPGRADE_GENERATION_ENV);
	char *end;
	unsigned long v;

	if (s == NULL)
		return 1;
	errno = 0;
	v = strtoul(s, &end, 10);
	unsetenv(UPGRADE_GENERATION_ENV);
	return errno != 0 || end == s || *end != '\0' || v < 1 || v > 1000000000 ? 1 : (unsigned)v;
}

void upgrade_report_ready(int fd)
{
	if (fd < 0)
		return;
	if (write(fd, "r", 1) != 1)
		log_warn("upgrade: reporting ready: %s", strerror(errno));
	close(fd);
}
