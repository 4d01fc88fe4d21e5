#!/usr/bin/env python3
"""Checks that every C source and header of the repository is laid out as .clang-format
says, with clang-format 14 (Debian 12's): other versions lay the same code out differently,
so with another version (or none) the check is skipped, with the reason, never passed.

Usage: format_check.py [--quiet] [--fix]; exit 0 formatted, 1 not, 77 skipped.
`make format` runs it with --fix."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SKIP = 77


def clang_format():
    """The path of a clang-format whose major version is 14, or None."""
    for name in ("clang-format-14", "clang-format"):
        path = shutil.which(name)
        if path is None:
            continue
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        if re.search(r"version 14\.", out):
            return path
    return None


def sources():
    out = subprocess.run(["git", "ls-files", "*.c", "*.h"], cwd=REPO, capture_output=True,
                         text=True)
    if out.returncode == 0 and out.stdout.strip():
        return sorted(out.stdout.split())
    return sorted(str(p.relative_to(REPO)) for p in REPO.rglob("*.[ch]")
                  if "build" not in p.parts)


def main(argv):
    fix = "--fix" in argv
    cf = clang_format()
    if cf is None:
        print("skipped: clang-format 14 (Debian 12's) not found; another version lays the "
              "code out differently")
        return SKIP
    files = sources()
    if fix:
        subprocess.run([cf, "-i"] + files, cwd=REPO, check=True)
        print(f"formatted {len(files)} files with {cf}")
        return 0
    bad = []
    for i in range(0, len(files), 50):
        batch = files[i:i + 50]
        p = subprocess.run([cf, "--dry-run", "--Werror"] + batch, cwd=REPO,
                           capture_output=True, text=True)
        if p.returncode != 0:
            bad += sorted({m for m in re.findall(r"^([^:\n]+\.[ch]):\d+:\d+: error",
                                                 p.stderr, re.M)})
    if bad:
        print(f"{len(bad)} of {len(files)} files are not laid out as .clang-format says "
              f"(make format fixes them):")
        for b in bad:
            print(f"  {b}")
        return 1
    print(f"{len(files)} files formatted as .clang-format says ({cf})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
