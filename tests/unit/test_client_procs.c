/* client/procs.c with fault injection: pipe2(), fork() and waitpid() are wrapped at link
 * time (-Wl,--wrap=...), so their failures, which cannot be provoked on demand, are made
 * to happen. A failed pipe2 or fork leaves no descriptor open; a failed waitpid is a
 * failure of the run, never a status read from memory the call did not fill. Forked
 * "workers" exit at once with status 0 (the wrapper's child), so no run is made. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "client/monitor.h"
#include "client/options.h"
#include "client/procs.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int __wrap_pipe2(int fds[2], int flags);
int __real_pipe2(int fds[2], int flags);
pid_t __wrap_fork(void);
pid_t __real_fork(void);
pid_t __wrap_waitpid(pid_t pid, int *status, int options);
pid_t __real_waitpid(pid_t pid, int *status, int options);

static int pipe_calls, pipe_fail_at; /* fail call number pipe_fail_at (1, 2, ...) */
static int fork_calls, fork_fail_at;
static int waitpid_fail;

int __wrap_pipe2(int fds[2], int flags)
{
	if (++pipe_calls == pipe_fail_at) {
		errno = EMFILE;
		return -1;
	}
	return __real_pipe2(fds, flags);
}

pid_t __wrap_fork(void)
{
	pid_t pid;

	if (++fork_calls == fork_fail_at) {
		errno = EAGAIN;
		return -1;
	}
	pid = __real_fork();
	if (pid == 0)
		_exit(0); /* a worker that is done at once */
	return pid;
}

/* Failing: the child is reaped for real (no zombie is left), then the call reports
 * ECHILD having written 0, "exited with 0", into *status, which POSIX leaves unspecified
 * on failure: a caller that reads it anyway takes the failure for a clean exit. */
pid_t __wrap_waitpid(pid_t pid, int *status, int options)
{
	pid_t rc = __real_waitpid(pid, status, options);

	if (!waitpid_fail || rc <= 0)
		return rc;
	if (status != NULL)
		*status = 0;
	errno = ECHILD;
	return -1;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

/* Runs procs_run with 3 workers and the faults set; its status. */
static int run3(void)
{
	struct client_opts *o = calloc(1, sizeof(*o));
	struct plan plan;
	struct driver_params dp = {.o = o, .plan = &plan};
	struct monitor m;
	struct result *results;
	int rc;

	assert_non_null(o);
	o->procs = 3;
	o->connections = 3;
	results = procs_alloc(3);
	assert_non_null(results);
	memset(&m, 0, sizeof(m));
	m.o = o;
	m.results = results;
	m.nresults = 3;
	/* The parent's loop ticks the monitor a second after t0; this monitor is not
	 * monitor_init'ed (no census, no sums), so no tick may run: the workers here exit at
	 * once, and t0 an hour ahead keeps even a stalled machine from ticking (t0 = 0 made
	 * the first tick due at once: a segfault in monitor_tick). */
	m.t0_us = clock_mono_us() + 3600LL * 1000000;
	plan_init(&plan, o);
	pipe_calls = fork_calls = 0;
	rc = procs_run(&dp, results, &m);
	procs_free(results, 3);
	free(o);
	return rc;
}

static void no_children_left(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_clean_run(void **state)
{
	int before = open_fds();

	(void)state;
	pipe_fail_at = fork_fail_at = waitpid_fail = 0;
	assert_int_equal(run3(), 0);
	assert_int_equal(fork_calls, 3);
	assert_int_equal(open_fds(), before);
	no_children_left();
}

static void test_pipe2_fails(void **state)
{
	int before = open_fds();

	(void)state;
	pipe_fail_at = 2; /* the first worker's pipe is made, the second's is not */
	fork_fail_at = waitpid_fail = 0;
	assert_int_equal(run3(), 1);
	pipe_fail_at = 0;
	assert_int_equal(fork_calls, 0);
	assert_int_equal(open_fds(), before);
}

static void test_fork_fails(void **state)
{
	int before = open_fds();

	(void)state;
	fork_fail_at = 2; /* one worker forked, then fork fails */
	pipe_fail_at = waitpid_fail = 0;
	assert_int_equal(run3(), 1);
	fork_fail_at = 0;
	assert_int_equal(fork_calls, 2);
	assert_int_equal(open_fds(), before); /* every pipe closed, the forked one's too */
	no_children_left();
}

static void test_waitpid_fails(void **state)
{
	int before = open_fds();

	(void)state;
	pipe_fail_at = fork_fail_at = 0;
	waitpid_fail = 1;
	assert_int_equal(run3(), 1); /* not "every worker exited 0" */
	waitpid_fail = 0;
	assert_int_equal(open_fds(), before);
	no_children_left();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_clean_run),
	    cmocka_unit_test(test_pipe2_fails),
	    cmocka_unit_test(test_fork_fails),
	    cmocka_unit_test(test_waitpid_fails),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
