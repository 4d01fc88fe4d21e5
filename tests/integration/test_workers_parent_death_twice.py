# Goal of this test: a worker whose supervisor dies thread by thread (the forking thread first, the log writer thread later) gets its parent-death signal twice, once per reparenting, and still drains once to the end: no "second signal" exit, every connection closed by the drain's FIN, none left open or reset.
import ctypes
import os
import signal
import subprocess

from harness import COUNTERS_RE, Server, ServerTest, wait_until

HELD = 20  # connections that keep the drain going until the test lets them go

_libc = ctypes.CDLL(None, use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_DETACH, PTRACE_SEIZE, PTRACE_O_TRACEEXIT = 17, 0x4206, 0x40
PTRACE_EVENT_EXIT = 6
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


class ParentDeathTwiceTest(ServerTest):
    def test_second_parent_death_signal_keeps_the_drain(self):
        srv = Server(self, sets={"workers": "2", "heartbeat_timeout": "0",
                                 "shutdown_timeout": "60s", "log_level": "debug"}).start()
        workers = wait_until(lambda: len(worker_pids(srv.pid)) == 2 and worker_pids(srv.pid),
                             10, "two workers")
        self.addCleanup(lambda: [os.kill(p, signal.SIGKILL) for p in workers if alive(p)])
        held = []
        for _ in range(HELD):
            s = self.connect(srv.port)
            self.echo_once(s)
            held.append(s)
        tids = sorted(int(t) for t in os.listdir(f"/proc/{srv.pid}/task"))
        self.assertEqual(len(tids), 2, "the supervisor runs its main thread and log.c's writer")
        writer = [t for t in tids if t != srv.pid][0]
        self.hold_at_exit(writer)

        # SIGKILL ends every thread of the supervisor. The main thread, which forked the
        # workers, dies first: they are reparented to the writer thread, the first
        # parent-death signal (kernel/exit.c, forget_original_parent()). The writer is held
        # at its exit until the workers drain; released, it dies and they are reparented
        # to init: the second signal.
        srv.proc.kill()
        _, status = os.waitpid(writer, WALL)
        self.assertEqual(status >> 8, signal.SIGTRAP | PTRACE_EVENT_EXIT << 8,
                         f"the writer thread stops at its exit (wait status {status:#x})")
        self.assertEqual(state(srv.pid, srv.pid), "Z", "the main thread is dead")
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

    def hold_at_exit(self, tid):
        """Traces thread tid (PTRACE_SEIZE, PTRACE_O_TRACEEXIT): when it dies, even by
        SIGKILL, it stops before the kernel reparents its process's children, until
        release(). Only that thread is traced: the main thread dies freely."""
        if _libc.ptrace(PTRACE_SEIZE, tid, None, PTRACE_O_TRACEEXIT) < 0:
            err = ctypes.get_errno()
            self.skipTest(f"ptrace(PTRACE_SEIZE): {os.strerror(err)}")
        self.addCleanup(self.release, tid)

    @staticmethod
    def release(tid):
        _libc.ptrace(PTRACE_DETACH, tid, None, None)  # ESRCH once released: nothing to do
