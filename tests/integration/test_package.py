# Goal of this test: `make install`/`make uninstall` put every file (binaries, server.conf, man pages, systemd unit) in place with the right modes under PREFIX and DESTDIR and remove them again; --help/--version work on both binaries; the man pages name every config key with its defaults and every flag; the unit verifies and stops the server the way its drain needs.
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
import unittest

from harness import REPO, Server, process_tree, wait_until

SERVER = REPO / "bin" / "echo-server"
CLIENT = REPO / "bin" / "load-client"
UNIT = REPO / "conf" / "echo-server.service"
MAN = {"echo-server": REPO / "conf" / "echo-server.1",
       "load-client": REPO / "conf" / "load-client.1"}

# Relative to DESTDIR after `make install PREFIX=/usr`: path -> mode.
INSTALLED = {
    "usr/bin/echo-server": 0o755,
    "usr/bin/load-client": 0o755,
    "usr/etc/teardown/server.conf": 0o644,
    "usr/share/man/man1/echo-server.1": 0o644,
    "usr/share/man/man1/load-client.1": 0o644,
    "usr/lib/systemd/system/echo-server.service": 0o644,
}


def version():
    text = (REPO / "common" / "version.h").read_text()
    return re.search(r'#define TEARDOWN_VERSION "([^"]+)"', text).group(1)


def make(*args):
    p = subprocess.run(["make", "--no-print-directory", "-C", str(REPO)] + list(args),
                       capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        raise AssertionError(f"make {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    return p


def read(path):
    with open(path) as f:
        return f.read()


def files_under(root):
    out = {}
    for d, _, names in os.walk(root):
        for n in names:
            p = os.path.join(d, n)
            out[os.path.relpath(p, root)] = stat.S_IMODE(os.lstat(p).st_mode)
    return out


def run(cmd, timeout=30):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def check_config(*args):
    """The effective config as --check-config prints it (key -> value text): the key
    table itself, so a key added or a default changed shows up here."""
    p = run([SERVER, "--check-config"] + list(args))
    if p.returncode != 0:
        raise AssertionError(f"--check-config {args}: exit {p.returncode}\n{p.stderr}")
    # On stdout; an unset key (metrics_listen) is a comment "# key =".
    keys = {k: v or "" for k, v in re.findall(r"^(?:# )?([a-z_]+) =(?: (.*))?$", p.stdout, re.M)}
    if len(keys) < 20:
        raise AssertionError(f"--check-config printed only {len(keys)} keys:\n{p.stdout}")
    return keys


def man_text(troff):
    """Troff source to plain text good enough for searching (fonts and escapes out)."""
    t = re.sub(r"\\f[BIRP]", "", troff)
    return t.replace("\\-", "-").replace("\\(en", "-").replace("\\e", "\\")


def man_key_entries(path):
    """KEYS section of echo-server.1: key -> (kind, text of its .TP entry); kind is the
    tag's italic word after "key =" (duration, size, ...)."""
    src = path.read_text()
    keys = src.split("\n.SH KEYS\n", 1)[1].split("\n.SH ", 1)[0]
    out = {}
    for entry in keys.split("\n.TP\n")[1:]:
        m = re.match(r"\\fB([a-z_]+)\\fP = (\\fI(\w+)\\fP)?", entry)
        if m:
            out[m.group(1)] = (m.group(3) or "", " ".join(man_text(entry).split()))
    return out


DURATION_UNITS = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024 * 1024}


def duration_ms(text):
    """A config duration (0, 250ms, 10s, 2m, 1h) in ms."""
    m = re.fullmatch(r"0|(\d+)(ms|s|m|h)", text.strip())
    if not m:
        raise AssertionError(f"not a duration: {text!r}")
    return 0 if text.strip() == "0" else int(m.group(1)) * DURATION_UNITS[m.group(2)]


def same_value(kind, a, b):
    """Two spellings of one value of a key of that kind (60s and 1m are one duration)."""
    if kind == "duration":
        return duration_ms(a) == duration_ms(b)
    if kind == "size":
        (na, ua), (nb, ub) = (re.fullmatch(r"(\d+)([km]?)", v).groups() for v in (a, b))
        return int(na) * SIZE_UNITS[ua] == int(nb) * SIZE_UNITS[ub]
    return a == b


def timespan_ms(text):
    """A systemd time span (15s, 1min 30s, 90 = seconds) in ms."""
    units = {"us": 0.001, "ms": 1, "": 1000, "s": 1000, "sec": 1000, "m": 60000,
             "min": 60000, "h": 3600000, "hr": 3600000}
    parts = re.findall(r"(\d+)\s*([a-z]*)", text)
    if not parts or "".join(n + u for n, u in parts) != re.sub(r"\s", "", text):
        raise AssertionError(f"not a time span: {text!r}")
    return sum(int(n) * units[u] for n, u in parts)


def unit_settings(path):
    out = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


class InstallTest(unittest.TestCase):
    def setUp(self):
        for b in (SERVER, CLIENT):
            if not b.exists():
                self.fail(f"{b} does not exist (make)")
        self.dest = tempfile.mkdtemp(prefix="teardown-destdir-")
        self.addCleanup(shutil.rmtree, self.dest, ignore_errors=True)

    def test_install_puts_every_file_in_place(self):
        make("install", f"DESTDIR={self.dest}", "PREFIX=/usr")
        got = files_under(self.dest)
        print("installed: " + ", ".join(f"{p} {m:o}" for p, m in sorted(got.items())))
        self.assertEqual(got, INSTALLED)
        d = self.dest
        self.assertEqual(read(f"{d}/usr/etc/teardown/server.conf"),
                         (REPO / "conf" / "server.conf").read_text())
        unit = read(f"{d}/usr/lib/systemd/system/echo-server.service")
        self.assertIn("\nExecStart=/usr/bin/echo-server -c /usr/etc/teardown/server.conf\n", unit)
        self.assertNotIn("/usr/local", unit)
        self.assertNotIn("/usr/local", read(f"{d}/usr/share/man/man1/echo-server.1"))
        for name in ("echo-server", "load-client"):
            p = run([f"{d}/usr/bin/{name}", "--version"])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual((p.stdout + p.stderr).strip(), f"{name} {version()}")
        # The unit's command line, with the installed file, is a valid config.
        p = run([f"{d}/usr/bin/echo-server", "-c", f"{d}/usr/etc/teardown/server.conf",
                 "--check-config"])
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_default_prefix_and_sysconfdir(self):
        make("install", f"DESTDIR={self.dest}")
        got = files_under(self.dest)
        self.assertEqual(got, {p.replace("usr/", "usr/local/", 1): m
                               for p, m in INSTALLED.items()})
        make("uninstall", f"DESTDIR={self.dest}")
        make("install", f"DESTDIR={self.dest}", "PREFIX=/usr", "SYSCONFDIR=/etc")
        self.assertIn("etc/teardown/server.conf", files_under(self.dest))
        unit = read(f"{self.dest}/usr/lib/systemd/system/echo-server.service")
        self.assertIn("ExecStart=/usr/bin/echo-server -c /etc/teardown/server.conf\n", unit)
        self.assertIn("/etc/teardown/server.conf",
                      read(f"{self.dest}/usr/share/man/man1/echo-server.1"))

    def test_uninstall_removes_every_file(self):
        make("install", f"DESTDIR={self.dest}", "PREFIX=/usr")
        make("uninstall", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(files_under(self.dest), {})
        self.assertFalse(os.path.exists(f"{self.dest}/usr/etc/teardown"))

    def test_edited_config_is_kept(self):
        make("install", f"DESTDIR={self.dest}", "PREFIX=/usr")
        conf = f"{self.dest}/usr/etc/teardown/server.conf"
        with open(conf, "a") as f:
            f.write("workers = 4\n")
        edited = read(conf)
        p = make("install", f"DESTDIR={self.dest}", "PREFIX=/usr")
        print(p.stdout.strip().splitlines()[-6:])
        self.assertEqual(read(conf), edited)
        self.assertEqual(read(conf + ".new"), (REPO / "conf" / "server.conf").read_text())
        make("uninstall", f"DESTDIR={self.dest}", "PREFIX=/usr")
        self.assertEqual(files_under(self.dest), {"usr/etc/teardown/server.conf": 0o644})


class CommandLineTest(unittest.TestCase):
    def test_help_exits_0_with_usage_on_stdout(self):
        # Both man pages say: --help prints the usage to standard output and exits 0 (help
        # asked for is the output; a usage error's pointer to it goes to stderr).
        for b in (SERVER, CLIENT):
            for flag in ("--help", "-h"):
                with self.subTest(binary=b.name, flag=flag):
                    p = run([b, flag])
                    self.assertEqual(p.returncode, 0, p.stderr)
                    self.assertTrue(p.stdout.startswith("usage: " + b.name), p.stdout)
                    self.assertEqual(p.stderr, "")

    def test_version_is_the_same_everywhere(self):
        v = version()
        for b in (SERVER, CLIENT):
            p = run([b, "--version"])
            self.assertEqual((p.returncode, p.stderr.strip()), (0, f"{b.name} {v}"))
            th = re.search(r"^\.TH .*$", MAN[b.name].read_text(), re.M).group(0)
            self.assertIn(f'"teardown {v}"', th)


class ManPageTest(unittest.TestCase):
    def test_every_config_key_and_default_in_echo_server_1(self):
        correct, leaky = check_config(), check_config("--mode", "leaky")
        entries = man_key_entries(MAN["echo-server"])
        self.assertEqual(sorted(entries), sorted(correct),
                         "the man page's keys differ from the server's key table")
        for key, value in correct.items():
            with self.subTest(key=key):
                kind, text = entries[key]
                m = re.search(r"Default: (\S+?)[.;]? ?(?:\(off\)\.)?(?:leaky: (\S+)\.)?$", text)
                self.assertIsNotNone(m, f"no 'Default: ...' at the end of: {text}")
                man_default, man_leaky = m.group(1), m.group(2)
                self.assertTrue(same_value(kind, man_default, value or "unset"),
                                f"{key}: the man page says {man_default}, the table {value}")
                if key == "mode":
                    continue
                if leaky[key] != value:
                    self.assertIsNotNone(man_leaky, f"{key}: leaky mode's {leaky[key]} missing")
                    self.assertTrue(same_value(kind, man_leaky, leaky[key]),
                                    f"{key}: leaky: the man page says {man_leaky}, the table "
                                    f"{leaky[key]}")
                else:
                    self.assertIsNone(man_leaky, f"{key}: no leaky default differs")
        print(f"{len(entries)} keys documented with their defaults in both modes")

    def test_every_flag_in_the_man_pages(self):
        for b in (SERVER, CLIENT):
            flags = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", run([b, "--help"]).stdout))
            text = man_text(MAN[b.name].read_text())
            missing = sorted(f for f in flags if not re.search(re.escape(f) + r"(?![a-z-])", text))
            with self.subTest(binary=b.name):
                self.assertEqual(missing, [], f"flags of {b.name} --help not in its man page")
            print(f"{b.name}: {len(flags)} flags documented")

    def test_man_pages_lint_clean(self):
        for name, path in MAN.items():
            with self.subTest(page=name):
                if shutil.which("mandoc"):
                    p = run(["mandoc", "-T", "lint", "-W", "warning", path])
                    self.assertEqual(p.stdout + p.stderr, "")
                elif shutil.which("groff"):
                    p = run(["groff", "-man", "-z", "-ww", path])
                    self.assertEqual(p.stderr, "")
                else:
                    self.skipTest("neither mandoc nor groff is installed")


class SystemdUnitTest(unittest.TestCase):
    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (apt-get install systemd)")
        dest = tempfile.mkdtemp(prefix="teardown-destdir-")
        self.addCleanup(shutil.rmtree, dest, ignore_errors=True)
        make("install", f"DESTDIR={dest}", "PREFIX=/usr")
        # verify checks that ExecStart's binary exists and that `man echo-server(1)`
        # finds the page, so the copy checked points into DESTDIR.
        unit = read(f"{dest}/usr/lib/systemd/system/echo-server.service")
        unit = unit.replace("ExecStart=/usr/", f"ExecStart={dest}/usr/")
        unit = unit.replace(" -c /usr/", f" -c {dest}/usr/")
        vdir = os.path.join(dest, "verify")
        os.mkdir(vdir)
        with open(os.path.join(vdir, "echo-server.service"), "w") as f:
            f.write(unit)
        shutil.copy(REPO / "conf" / "echo-server.socket", vdir)
        cmd = ["systemd-analyze", "verify"]
        if not shutil.which("man"):
            cmd.append("--man=no")
            print("man is not installed: the Documentation= check is skipped")
        env = dict(os.environ, MANPATH=f"{dest}/usr/share/man")
        p = subprocess.run(cmd + [os.path.join(vdir, "echo-server.service"),
                                  os.path.join(vdir, "echo-server.socket")],
                           capture_output=True, text=True, timeout=60, env=env)
        # verify exits 0 even for unknown or unparsable settings: any output is a failure.
        self.assertEqual((p.returncode, p.stdout + p.stderr), (0, ""))

    def test_stop_matches_the_drain(self):
        s = unit_settings(UNIT)
        self.assertEqual(s.get("KillSignal"), ["SIGTERM"])
        self.assertEqual(s.get("KillMode"), ["mixed"])
        self.assertEqual(s.get("Restart"), ["on-failure"])
        self.assertIn("LimitNOFILE", s)
        stop = timespan_ms(s["TimeoutStopSec"][0])
        built_in = duration_ms(check_config()["shutdown_timeout"])
        shipped = duration_ms(check_config("-c", REPO / "conf" / "server.conf")["shutdown_timeout"])
        print(f"TimeoutStopSec {stop} ms; shutdown_timeout {built_in} ms built in, "
              f"{shipped} ms in conf/server.conf")
        self.assertGreater(stop, built_in)
        self.assertGreater(stop, shipped)
        # "A little above": room to reap the workers and log the counters, not minutes.
        self.assertLessEqual(stop, max(built_in, shipped) + 30000)

    def test_sigterm_to_the_main_process_drains_every_worker(self):
        """KillMode=mixed: systemd signals only the main process, which forwards one
        SIGTERM to each worker. Peers that are still connected get their FIN and the
        server exits 0. (control-group would also signal each worker directly: that is
        the 'second signal' that exits at once; printed for comparison.)"""
        for whom in ("main", "all"):
            srv = Server(self, sets={"workers": "2", "shutdown_timeout": "10s"}).start()
            peers = []
            for _ in range(8):
                c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                self.addCleanup(c.close)
                c.sendall(b"x")
                self.assertEqual(c.recv(1), b"x")
                peers.append(c)
            pids = wait_until(lambda: len(process_tree(srv.pid)) == 3 and process_tree(srv.pid),
                              10, "two workers")
            t0 = time.monotonic()
            for pid in (pids if whom == "all" else [srv.pid]):
                os.kill(pid, signal.SIGTERM)
            ends = []
            for c in peers:
                try:
                    ends.append("FIN" if c.recv(1) == b"" else "data")
                except OSError as e:
                    ends.append(type(e).__name__)
                c.close()
            rc = srv.wait_exit(15)
            seen = {e: ends.count(e) for e in set(ends)}
            if whom == "main":
                print(f"SIGTERM to the main process: peers {seen}, exit {rc} "
                      f"after {time.monotonic() - t0:.2f}s")
                self.assertEqual(ends, ["FIN"] * len(peers), "the drain sends each peer a FIN")
                self.assertEqual(rc, 0, srv.log_tail())
            else:
                print(f"SIGTERM to every process (KillMode=control-group): peers {seen}, "
                      f"exit {rc} after {time.monotonic() - t0:.2f}s")


if __name__ == "__main__":
    unittest.main()
