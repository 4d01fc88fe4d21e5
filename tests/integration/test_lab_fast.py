# Goal of this test: the lab's quick programs (make lab-fast) all run on this kernel and each prints a verdict row (agrees, differs or nuance) computed from what it observed.
import os
import re
import subprocess
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LabFastTest(unittest.TestCase):
    def test_lab_fast(self):
        if os.geteuid() != 0:
            self.skipTest("needs root: the lab works in private network namespaces")
        p = subprocess.run(["make", "--no-print-directory", "lab-fast"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        out = p.stdout + p.stderr
        verdicts = re.findall(r"\|\s*(agrees|differs|nuance)", out)
        summary = [line for line in out.splitlines() if " ran, " in line]
        print(summary[-1] if summary else out[-2000:])
        self.assertEqual(p.returncode, 0, out[-4000:])
        self.assertGreaterEqual(len(verdicts), 10, out[-4000:])
        self.assertTrue(summary and re.search(r"\b0 skipped, 0 failed", summary[-1]),
                        out[-2000:])
