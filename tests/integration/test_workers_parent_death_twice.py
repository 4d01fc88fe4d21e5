# Goal of this test: a worker whose supervisor dies thread by thread (the forking thread first, the log writer thread later) gets its parent-death signal twice, once per reparenting, and still drains once to the end and logs its exit: the second copy neither ends the drain ("second signal") nor, coming after the event loop, kills the worker before its last lines are written.
import ctypes
import os
import signal
import subprocess
import time

from harness import COUNTERS_RE, Server, ServerTest, wait_until

HELD = 20  # connections that keep the drain going until the test lets them go

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_O_TRACEEXIT = 17, 0x4206, 0x4207, 0x40
PTRACE_EVENT_EXIT, PTRACE_EVENT_STOP = 6, 128
WALL = 0x40000000  # __WALL: waitpid() for a thread that is not a process's leader


def worker_pids(pid):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return sorted(int(p) for p in out.split())


def state(pid, tid=None):
    """The task's state letter (R, S, Z, t, ...), or None once it is gone."""
    path = f"/proc/{pid}/stat" if tid is None else f"/proc/{pid}/task/{tid}/stat"
    try:
        with open(path) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid):
    return state(pid) not in (None, "Z", "X")


def thread_name(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return None


def other_thread(pid):
    """pid's log writer thread (log.c names it td-log; worker 0 also runs td-census)."""
    tids = sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    writers = [t for t in tids if t != pid and thread_name(pid, t) == "td-log"]
    if len(writers) != 1:
        raise AssertionError(f"{pid} runs threads {[(t, thread_name(pid, t)) for t in tids]}: "
                             "expected one log writer, td-log")
    return writers[0]


def waiting_on_futex(pid):
    """pid's main thread sleeps in a futex wait (never so inside the event loop, which waits
    in epoll)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/wchan") as f:
            return "futex" in f.read()
    except FileNotFoundError:
        return False


class ParentDeathTwiceTest(ServerTest):
    def start_holding(self, **sets):
        """A supervisor with two workers, HELD connections that echoed once, and its log
        writer held at its exit: (server, worker pids, connections, writer tid)."""
        srv = Server(self, sets={"workers": "2", "heartbeat_timeout": "0",
                                 "shutdown_timeout": "60s", **sets}).start()
        workers = wait_until(lambda: len(worker_pids(srv.pid)) == 2 and worker_pids(srv.pid),
                             10, "two workers")
        self.addCleanup(lambda: [os.kill(p, signal.SIGKILL) for p in workers if alive(p)])
        held = []
        for _ in range(HELD):
            s = self.connect(srv.port)
            self.echo_once(s)
            held.append(s)
        writer = other_thread(srv.pid)
        self.hold_at_exit(writer)
        return srv, workers, held, writer

    def test_second_parent_death_signal_keeps_the_drain(self):
        srv, workers, held, writer = self.start_holding(log_level="debug")

        # SIGKILL ends every thread of the supervisor. The main thread, which forked the
        # workers, dies first: they are reparented to the writer thread, the first
        # parent-death signal (kernel/exit.c, forget_original_parent()). The writer is held
        # at its exit until the workers drain; released, it dies and they are reparented
        # to init: the second signal.
        self.kill_but_writer(srv, writer)
        wait_until(lambda: all(f"echo-server[{p}] info: draining" in srv.log()
                               for p in workers), 20, "each worker draining")
        self.release(writer)
        srv.proc.wait()  # the writer is gone too: the second signal is sent

        def second_seen():
            text = srv.log()
            return all(not alive(p) or f"echo-server[{p}] debug: the supervisor's death "
                       "signalled again" in text for p in workers)
        wait_until(second_seen, 20, "each worker to handle the second parent-death signal")
        ends = []
        for s in held:
            try:
                ends.append("eof" if s.recv(1) == b"" else "data")
            except OSError as e:
                ends.append(type(e).__name__)
            s.close()
        wait_until(lambda: not any(alive(p) for p in workers), 30, "every worker gone")

        log = srv.log()
        last = {}
        for line in log.splitlines():
            m = COUNTERS_RE.match(line)
            if m:
                last[int(m.group(1))] = line
        seconds = [line for line in log.splitlines() if "second" in line]
        print(f"parent death twice: held connections ended {sorted(set(ends))}; "
              f"'second' lines {seconds}; workers' last counters: "
              f"{[last.get(p, '')[60:160] for p in workers]}")
        self.assertEqual(seconds, [], "the second parent-death signal ended a drain")
        self.assertEqual(ends, ["eof"] * HELD, "each held connection gets the drain's FIN")
        for p in workers:
            self.assertIn(f"echo-server[{p}] info: the supervisor died: graceful drain", log)
            self.assertIn(p, last, f"worker {p} logs its counters at exit")
            self.assertIn('"open":0,', last[p])
            self.assertIn('"reset":0,', last[p])

    def test_late_parent_death_signal_after_the_loop(self):
        """The second copy comes once a worker's event loop is over: its signal events
        are freed (the signal's default action, termination, is back) and it waits for its
        log writer to write its last lines. The copy must wait for _exit(), not end the
        worker with those lines unwritten. Each worker's writer is held (ptrace) so its
        lines wait in the buffer: log_finish() then waits up to LOG_FINISH_MS (1 s), the
        time the test has to send the copy and let the writer go."""
        srv, workers, held, writer = self.start_holding()
        worker_writers = [other_thread(p) for p in workers]
        for tid in worker_writers:
            self.hold_now(tid)

        self.kill_but_writer(srv, writer)  # the first copy: the workers drain
        ends = []
        for s in held:
            try:
                ends.append("eof" if s.recv(1) == b"" else "data")
            except OSError as e:
                ends.append(type(e).__name__)
            s.close()
        self.assertEqual(ends, ["eof"] * HELD, "each held connection gets the drain's FIN")
        wait_until(lambda: all(waiting_on_futex(p) for p in workers), 20,
                   "each worker's loop over, in log_finish()", interval=0.001)
        t0 = time.monotonic()
        self.release(writer)
        srv.proc.wait()  # the supervisor's last thread is gone: the second copy is sent
        for tid in worker_writers:
            self.release(tid)
        took = time.monotonic() - t0
        wait_until(lambda: not any(alive(p) for p in workers), 30, "every worker gone")

        log = srv.log()
        last = {}
        for line in log.splitlines():
            m = COUNTERS_RE.match(line)
            if m:
                last[int(m.group(1))] = line
        print(f"late parent-death signal: writers released {took * 1000:.1f} ms after the "
              f"loops ended; workers' last counters: {[last.get(p, '')[60:120] for p in workers]}")
        if took >= 0.9:
            self.skipTest(f"the test took {took:.2f}s to release the writers: log_finish() "
                          "may have given up waiting (1 s) on its own")
        for p in workers:
            self.assertIn(p, last, f"worker {p} logs its counters at exit")
            self.assertIn('"open":0,', last[p])
            self.assertIn(f"echo-server[{p}] info: the supervisor died: graceful drain", log)

    def kill_but_writer(self, srv, writer):
        """SIGKILL to the supervisor, whose writer thread is held at its exit: the main
        thread dies, the workers are reparented to the writer (the first copy)."""
        srv.proc.kill()
        _, status = os.waitpid(writer, WALL)
        self.assertEqual(status >> 8, signal.SIGTRAP | PTRACE_EVENT_EXIT << 8,
                         f"the writer thread stops at its exit (wait status {status:#x})")
        # The writer may stop there before the main thread is through its own exit.
        wait_until(lambda: state(srv.pid, srv.pid) == "Z", 10, "the main thread dead")

    def seize(self, tid, options):
        if _libc.ptrace(PTRACE_SEIZE, tid, None, options) < 0:
            err = ctypes.get_errno()
            self.skipTest(f"ptrace(PTRACE_SEIZE): {os.strerror(err)}")
        self.addCleanup(self.release, tid)

    def hold_at_exit(self, tid):
        """Traces thread tid (PTRACE_O_TRACEEXIT): when it dies, even by SIGKILL, it stops
        before the kernel reparents its process's children, until release(). Only that
        thread is traced: the process's other threads run and die freely."""
        self.seize(tid, PTRACE_O_TRACEEXIT)

    def hold_now(self, tid):
        """Stops thread tid where it is (log.c's writer: idle in its condition wait, the
        lock free) until release()."""
        self.seize(tid, 0)
        self.assertEqual(_libc.ptrace(PTRACE_INTERRUPT, tid, None, None), 0, "PTRACE_INTERRUPT")
        _, status = os.waitpid(tid, WALL)
        self.assertEqual(status >> 16, PTRACE_EVENT_STOP, f"{tid} stopped ({status:#x})")

    @staticmethod
    def release(tid):
        """Lets tid go; a thread that died traced is reaped here (its tracer's duty)."""
        _libc.ptrace(PTRACE_DETACH, tid, None, None)  # ESRCH once released: nothing to do
        try:
            os.waitpid(tid, WALL | os.WNOHANG)
        except ChildProcessError:
            pass
