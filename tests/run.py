#!/usr/bin/env python3
"""Runs every suite of `make test` and prints one total line: N passed, N failed, N skipped.

Checks are scripts run once each (tests/arch/include_graph.py: no include circle but
conn <-> server); each is one case.

Unit tests are cmocka binaries run with TAP output (each case is one line); integration
tests are Python unittest files tests/integration/test_*.py (each test method is a case;
skipTest() counts as skipped, with its reason printed)."""
import argparse
import os
import platform
import subprocess
import sys
import time
import unittest

TOTAL = {"passed": 0, "failed": 0, "skipped": 0}


def count(kind, name, detail=""):
    TOTAL[kind] += 1
    tag = {"passed": "PASS", "failed": "FAIL", "skipped": "SKIP"}[kind]
    print(f"{tag} {name}{(' ' + detail) if detail else ''}", flush=True)


def run_unit(binaries, label):
    env = dict(os.environ, CMOCKA_MESSAGE_OUTPUT="TAP")
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    for b in binaries:
        name = f"{label}:{os.path.basename(b)}"
        try:
            p = subprocess.run([b], env=env, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            count("failed", name, "(timed out after 300 s)")
            continue
        cases = 0
        failed_before = TOTAL["failed"]
        for line in p.stdout.splitlines():
            if line.startswith("ok ") or line.startswith("not ok "):
                cases += 1
                case = f"{name}:{line.split(' - ', 1)[-1].split(' # ')[0].strip()}"
                if "# SKIP" in line:
                    count("skipped", case, line.split("# SKIP", 1)[1].strip())
                elif line.startswith("ok "):
                    count("passed", case)
                else:
                    count("failed", case)
        # A crash, a sanitizer report or an exit status that disagrees with the cases
        # fails the binary as a whole: never a silent pass.
        if cases == 0 or (p.returncode != 0 and TOTAL["failed"] == failed_before) or "Sanitizer" in p.stderr \
                or "runtime error:" in p.stderr:
            count("failed", name, f"(exit {p.returncode}, {cases} cases)")
        if p.returncode != 0 or "Sanitizer" in p.stderr or "runtime error:" in p.stderr:
            sys.stdout.write(p.stdout[-4000:])
            sys.stdout.write(p.stderr[-4000:])


class Result(unittest.TextTestResult):
    def startTest(self, test):
        self._t0 = time.monotonic()
        super().startTest(test)

    label = "integration"

    def _name(self, test):
        return f"{self.label}:{test.id().replace('test_', '', 1)}"

    def addSuccess(self, test):
        super().addSuccess(test)
        count("passed", self._name(test), f"({time.monotonic() - self._t0:.1f}s)")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        count("failed", self._name(test))
        print(self._exc_info_to_string(err, test), flush=True)

    def addError(self, test, err):
        super().addError(test, err)
        count("failed", self._name(test))
        print(self._exc_info_to_string(err, test), flush=True)

    def addSubTest(self, test, subtest, err):
        # A failing subTest is reported here only: unittest then calls neither addSuccess
        # nor addFailure for its test, which would otherwise vanish from the count.
        super().addSubTest(test, subtest, err)
        if err is not None:
            count("failed", self._name(subtest))
            print(self._exc_info_to_string(err, test), flush=True)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        count("skipped", self._name(test), f"skipped: {reason}")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        count("failed", self._name(test), "(expected failures are not allowed)")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        count("failed", self._name(test), "(unexpected success)")


def run_integration(directory, pattern, label="integration"):
    if os.path.abspath(directory) not in sys.path:
        sys.path.insert(0, os.path.abspath(directory))
    suite = unittest.defaultTestLoader.discover(directory, pattern=pattern,
                                                top_level_dir=directory)
    result_class = type("LabelledResult", (Result,), {"label": label})
    with open(os.devnull, "w") as devnull:
        runner = unittest.TextTestRunner(stream=devnull, resultclass=result_class,
                                         verbosity=0)
        runner.run(suite)


def run_integration_asan(directory, pattern):
    """The same tests against the ASan+UBSan binaries: the harness fails a test whose
    server printed a sanitizer report."""
    os.environ["SERVER_BIN"] = "build/asan/bin/echo-server"
    os.environ["CLIENT_BIN"] = "build/asan/bin/load-client"
    try:
        run_integration(directory, pattern, "integration-asan")
    finally:
        del os.environ["SERVER_BIN"], os.environ["CLIENT_BIN"]


def run_checks(scripts):
    """Each script (a path, run with python3) is one case: exit 0 passes, 77 is skipped
    (its last line gives the reason); its output is shown when it fails."""
    for script in scripts:
        name = f"check:{os.path.basename(script)}"
        try:
            p = subprocess.run([sys.executable, script, "--quiet"], capture_output=True,
                               text=True, timeout=120)
        except subprocess.TimeoutExpired:
            count("failed", name, "(timed out after 120 s)")
            continue
        if p.returncode == 0:
            count("passed", name)
        elif p.returncode == 77:
            lines = p.stdout.strip().splitlines()
            count("skipped", name, lines[-1] if lines else "skipped: no reason given")
        else:
            count("failed", name, f"(exit {p.returncode})")
            sys.stdout.write(p.stdout[-4000:])
            sys.stdout.write(p.stderr[-4000:])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", default="",
                    help="scripts (space-separated) that pass with exit 0, one case each")
    ap.add_argument("--unit", default="")
    ap.add_argument("--unit-asan", default="")
    ap.add_argument("--integration")
    ap.add_argument("--pattern", default="test_*.py")
    ap.add_argument("--asan-pattern", default="",
                    help="integration tests (comma-separated patterns) to run again "
                         "against the sanitizer build")
    a = ap.parse_args()
    print(f"kernel {platform.release()}, {os.cpu_count()} cpus, uid {os.getuid()}", flush=True)
    if a.check.split():
        run_checks(a.check.split())
    if a.unit.split():
        run_unit(a.unit.split(), "unit")
    if a.unit_asan.split():
        run_unit(a.unit_asan.split(), "unit-asan")
    if a.integration:
        run_integration(a.integration, a.pattern)
    if a.integration and a.asan_pattern:
        for pattern in a.asan_pattern.split(","):
            run_integration_asan(a.integration, pattern)
    print(f"{TOTAL['passed']} passed, {TOTAL['failed']} failed, {TOTAL['skipped']} skipped")
    sys.exit(1 if TOTAL["failed"] else 0)


if __name__ == "__main__":
    main()
