# Goal of this test: a short scenario touching every close path runs under valgrind memcheck with no memory error and no definitely-lost byte (the same check as `make check-valgrind`).
import shutil
import subprocess
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class ValgrindTest(unittest.TestCase):
    def test_no_leaks_no_errors(self):
        if shutil.which("valgrind") is None:
            self.skipTest("valgrind is not installed")
        p = subprocess.run([sys.executable, str(ROOT / "tests" / "valgrind.py")],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
        print(p.stdout.strip().splitlines()[0] if p.stdout.strip() else p.stderr[-2000:])
        self.assertEqual(p.returncode, 0, p.stdout[-4000:] + p.stderr[-2000:])
