#!/usr/bin/python3
"""Size limits of the source tree: no source file over 600 lines, no function
over 80 (C and Python).  Prints every offender; exits 1 if there is one.

C functions are found the way the style writes them: the body's opening and
closing braces alone in column 0.  Python functions through ast.
"""

import ast
import os
import subprocess
import sys

MAX_FILE = 600
MAX_FUNCTION = 80
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_SCRIPTS = ("bench/run", "bench/notify", "bench/failover", "bench/http", "examples/lab/lab",
                  "examples/lab/demo", "examples/demo")


SKIP = 77   # meson: skipped


def tracked_sources():
    r = subprocess.run(["git", "-C", ROOT, "ls-files", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, text=True)
    if r.returncode != 0:
        print("sizes: not a git checkout (%s): skipped" % r.stderr.strip())
        sys.exit(SKIP)
    for rel in r.stdout.splitlines():
        if rel.endswith((".c", ".h", ".py")) or rel in PYTHON_SCRIPTS:
            if os.path.isfile(os.path.join(ROOT, rel)):
                yield rel


def c_functions(lines):
    start = None
    for i, line in enumerate(lines, 1):
        if line.startswith("{"):
            start = i - 1  # the declaration's last line
        elif line.startswith("}") and start is not None:
            yield start, i
            start = None


def python_functions(text, rel):
    try:
        tree = ast.parse(text, rel)
    except SyntaxError:
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.lineno, node.end_lineno


def main():
    problems = []
    for rel in sorted(tracked_sources()):
        text = open(os.path.join(ROOT, rel), encoding="utf-8", errors="replace").read()
        lines = text.splitlines()
        if len(lines) > MAX_FILE:
            problems.append("%s: %d lines (at most %d)" % (rel, len(lines), MAX_FILE))
        if rel.endswith((".c", ".h")):
            for first, last in c_functions(lines):
                if last - first + 1 > MAX_FUNCTION:
                    problems.append("%s:%d: function of %d lines (at most %d): %s" % (
                        rel, first, last - first + 1, MAX_FUNCTION, lines[first - 1].strip()))
        else:
            for name, first, last in python_functions(text, rel):
                if last - first + 1 > MAX_FUNCTION:
                    problems.append("%s:%d: function %s of %d lines (at most %d)" % (
                        rel, first, name, last - first + 1, MAX_FUNCTION))
    for p in problems:
        print(p)
    print("sizes: %d problem(s)" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
