# Goal of this test: -c accepts only a regular file of at most 1 MiB: a device (/dev/zero), a FIFO without a writer, a directory and a larger file each end the start (or --check-config) at once with exit 2 and a message naming the reason, using bounded memory.
import os
import tempfile
import time

from harness import ServerTest, run_cli, server_bin

MIB = 1 << 20


def sanitized():
    return "/asan/" in str(server_bin())  # read per test: the runner sets SERVER_BIN late


def check_config(path, timeout=15):
    """--check-config -c path; the plain build under a 256 MiB data limit, so a server that
    reads a device without end fails fast instead of filling the machine's memory (ASan
    reserves terabytes of shadow memory and cannot run under such a limit)."""
    prefix = () if sanitized() else ("prlimit", f"--data={256 * MIB}")
    t0 = time.monotonic()
    p = run_cli(["--check-config", "-c", path], timeout=timeout, prefix=prefix)
    return p, time.monotonic() - t0


class ConfigFileKindsTest(ServerTest):
    def expect_refused(self, path, reason):
        p, took = check_config(path)
        print(f"-c {path}: exit {p.returncode} in {took:.2f}s: {p.stderr.strip()}")
        self.assertIsNone(p.sanitizer, p.stderr)
        self.assertFalse(p.started, "the server started listening")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"{path}: {reason}", p.stderr)
        return p

    def test_devices_refused(self):
        for dev in ("/dev/zero", "/dev/null"):
            with self.subTest(dev=dev):
                self.expect_refused(dev, "not a regular file (a character device)")

    def test_fifo_without_writer_does_not_block(self):
        d = tempfile.mkdtemp(prefix="teardown-fifo-")
        path = os.path.join(d, "server.conf")
        os.mkfifo(path)
        self.addCleanup(os.rmdir, d)
        self.addCleanup(os.unlink, path)
        self.expect_refused(path, "not a regular file (a FIFO)")

    def test_directory_refused(self):
        d = tempfile.mkdtemp(prefix="teardown-dir-")
        self.addCleanup(os.rmdir, d)
        self.expect_refused(d, "not a regular file (a directory)")

    def test_size_bound(self):
        d = tempfile.mkdtemp(prefix="teardown-big-")
        path = os.path.join(d, "server.conf")
        self.addCleanup(os.rmdir, d)
        self.addCleanup(os.unlink, path)
        line = b"#" * 63 + b"\n"
        first = b"listen = 127.0.0.1:0 " + line[21:]
        with open(path, "wb") as f:
            f.write(first + line * (MIB // len(line) - 1))
        self.assertEqual(os.path.getsize(path), MIB)
        p, took = check_config(path)
        print(f"exactly 1 MiB: exit {p.returncode} in {took:.2f}s")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(path, "ab") as f:
            f.write(b"\n")
        self.expect_refused(path, "larger than 1 MiB")
