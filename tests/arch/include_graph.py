#!/usr/bin/env python3
"""Prints the include graph of server/ and client/ (one module = x.c + x.h) and fails on an
import circle other than conn <-> server.

A module includes another when its .c or .h has `#include "other.h"` and other.h belongs to
the same folder; common/ headers point down and are left out. A circle is a strongly
connected set of two or more modules (Tarjan). conn <-> server is allowed: a connection
tells its owner that it is gone (server_conn_closed), the owner drives the connection.
server/lifecycle.c counts as part of server/server (SAME_MODULE below).

Usage: include_graph.py [--quiet] [REPO]; exit 0 when only allowed circles exist, 1 otherwise."""
import re
import sys
from pathlib import Path

ALLOWED = [{"server/conn", "server/server"}]
# Files that are one module: server/lifecycle.c is the orchestrator's own reload, upgrade
# and handover code (signals and generations of the same struct server), kept in a second
# file for its size; it is drawn and checked as part of server/server.
SAME_MODULE = {"server/lifecycle": "server/server"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+)\.h"', re.M)


def graph(repo, folder):
    d = repo / folder
    mods = {p.stem for p in d.iterdir() if p.suffix in (".c", ".h")}

    def module(stem):
        name = f"{folder}/{stem}"
        return SAME_MODULE.get(name, name)

    edges = {module(m): set() for m in mods}
    for p in sorted(d.iterdir()):
        if p.suffix not in (".c", ".h"):
            continue
        for inc in INCLUDE.findall(p.read_text(errors="replace")):
            if inc in mods and module(inc) != module(p.stem):
                edges[module(p.stem)].add(module(inc))
    return edges


def circles(edges):
    """Strongly connected components of two or more nodes (iterative Tarjan)."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(root):
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = set()
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.add(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(comp)

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(argv):
    quiet = "--quiet" in argv
    args = [a for a in argv if a != "--quiet"]
    repo = Path(args[0]) if args else Path(__file__).resolve().parents[2]
    bad = 0
    for folder in ("server", "client"):
        edges = graph(repo, folder)
        if not quiet:
            for m in sorted(edges):
                print(f"{m} -> {', '.join(sorted(edges[m])) or '(nothing)'}")
        for comp in circles(edges):
            ok = comp in ALLOWED
            bad += not ok
            print(f"{'allowed' if ok else 'CIRCLE'}: {' <-> '.join(sorted(comp))}")
    print("include graph: " + ("no circle but conn <-> server" if not bad else f"{bad} circle(s)"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
