# Goal of this test: when listen() or the event base fails after the listening socket is open (also when epoll cannot start: no silent fall back to poll), the server exits cleanly (no crash) with one error line, and a listen() failing with EADDRINUSE exits 2 like a port in use at bind().
import os
import shutil
import subprocess
import tempfile

from harness import ServerTest, run_cli, server_bin

# Fails the call named by $TEARDOWN_SHIM_FAIL ("call:ERRNO"): listen() with EADDRINUSE
# or EACCES (as when the port is taken between bind and listen), or libevent's
# event_base_new_with_config() (returns NULL, as when no backend can start; failing
# epoll_create1() used to be not enough: libevent 2.1 falls back to poll, which also has
# EV_FEATURE_EARLY_CLOSE; the server now refuses poll and select), or epoll_create1()
# and epoll_create() (EMFILE).
SHIM = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
static const char *shim_fail(const char *call)
{
	const char *f = getenv("TEARDOWN_SHIM_FAIL");
	size_t n = strlen(call);

	return f != NULL && strncmp(f, call, n) == 0 && f[n] == ':' ? f + n + 1 : NULL;
}
int listen(int fd, int backlog);
int listen(int fd, int backlog)
{
	const char *e = shim_fail("listen");

	(void)fd;
	(void)backlog;
	if (e == NULL)
		abort(); /* the shim is loaded only to fail */
	errno = strcmp(e, "EACCES") == 0 ? EACCES : EADDRINUSE;
	return -1;
}
void *event_base_new_with_config(const void *cfg);
void *event_base_new_with_config(const void *cfg)
{
	(void)cfg;
	if (shim_fail("base") == NULL)
		abort();
	errno = ENOMEM;
	return NULL;
}
int epoll_create1(int flags);
int epoll_create1(int flags)
{
	(void)flags;
	if (shim_fail("epoll") == NULL)
		abort();
	errno = EMFILE;
	return -1;
}
int epoll_create(int size); /* libevent's fallback when epoll_create1() fails */
int epoll_create(int size)
{
	return epoll_create1(size);
}
"""


class ListenFailsTest(ServerTest):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="teardown-shim-")
        cls.shims = {}
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            return
        src = os.path.join(cls.dir, "shim.c")
        with open(src, "w") as f:
            f.write(SHIM)
        # One shim per call: listen(), event_base_new_with_config(), epoll_create1().
        calls = {"listen": "listen", "base": "event_base_new_with_config",
                 "epoll": "epoll_create1", "epoll_create": "epoll_create"}
        for name in ("listen", "base", "epoll"):
            defs = [f"-D{c}=unused_{n}" for n, c in calls.items()
                    if n != name and not (name == "epoll" and n == "epoll_create")]
            so = os.path.join(cls.dir, f"{name}.so")
            p = subprocess.run([cc, "-shared", "-fPIC", "-o", so, src] + defs,
                               capture_output=True, text=True)
            if p.returncode == 0:
                cls.shims[name] = so
            else:
                cls.cc_error = p.stderr

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dir, ignore_errors=True)

    def run_with(self, shim, fail):
        if shim not in self.shims:
            self.skipTest(f"skipped: no C compiler to build the LD_PRELOAD shim "
                          f"({getattr(self, 'cc_error', 'cc not found')})")
        env = {"LD_PRELOAD": self.shims[shim], "TEARDOWN_SHIM_FAIL": fail,
               # The sanitizer build wants its runtime first in the library list.
               "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
               + ":verify_asan_link_order=0"}
        p = run_cli(["--listen", "127.0.0.1:0"], env=env)
        lines = [l for l in p.stderr.splitlines() if l.strip()]
        print(f"{fail}: exit {p.returncode}: {lines}")
        self.assertIsNone(p.sanitizer, p.stderr)
        self.assertFalse(p.started, "the server started listening")
        return p, lines

    def test_listen_eaddrinuse_exits_2(self):
        if not server_bin().exists():
            self.fail(f"server binary {server_bin()} does not exist")
        p, lines = self.run_with("listen", "listen:EADDRINUSE")
        self.assertEqual(p.returncode, 2, f"exit status (-11 = SIGSEGV); stderr: {p.stderr!r}")
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("Address already in use", lines[0])

    def test_listen_eacces_exits_2(self):
        p, lines = self.run_with("listen", "listen:EACCES")
        self.assertEqual(p.returncode, 2, f"exit status (-11 = SIGSEGV); stderr: {p.stderr!r}")
        self.assertEqual(len(lines), 1, lines)

    def test_no_event_base_exits_1(self):
        p, lines = self.run_with("base", "base:ENOMEM")
        self.assertEqual(p.returncode, 1, f"exit status (-11 = SIGSEGV); stderr: {p.stderr!r}")
        self.assertTrue(any("event loop" in l for l in lines), lines)

    def test_no_epoll_does_not_fall_back_to_poll(self):
        # libevent would run the server on poll(); conn.c relies on the epoll backend's
        # way of reporting an RST (libevent #1038), so the server refuses to start.
        p, lines = self.run_with("epoll", "epoll:EMFILE")
        self.assertEqual(p.returncode, 1, f"exit status; stderr: {p.stderr!r}")
        self.assertTrue(any("cannot start the event loop" in l and "epoll" in l
                            for l in lines), lines)
