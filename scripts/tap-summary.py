#!/usr/bin/env python3
"""Counts the results in the TAP files of a test run and prints the summary.

Each file is one step of `make test`. A test point is a line `ok ...` or
`not ok ...`; `# SKIP` marks a skip. Nested (K)TAP is read as upstream writes
it: a subtest block is indented and its parent's line only summarises it, so
only the innermost points are counted. The last line printed is exactly
`N passed, N failed`; skips are listed above it, never hidden.
"""
import re
import sys
from pathlib import Path

POINT = re.compile(r'^(\s*)(ok|not ok)\b\s*(\d+)?\s*-?\s*(.*)$')


def points(lines):
    """Yields (passed, skipped, name) for the innermost test points."""
    parsed = []
    for line in lines:
        m = POINT.match(line.rstrip('\n'))
        if m:
            parsed.append((len(m.group(1)), m.group(2) == 'ok', m.group(4)))
    for i, (depth, ok, name) in enumerate(parsed):
        # A point directly followed by deeper points... is preceded by them in TAP:
        # children come first, then the parent's summary line at lower depth.
        if i > 0 and parsed[i - 1][0] > depth:
            continue
        skip = bool(re.search(r'#\s*SKIP', name, re.I))
        yield ok, skip, name


def main():
    passed = failed = skipped = 0
    skips = []
    for f in sys.argv[1:]:
        p = Path(f)
        n_ok = n_fail = n_skip = 0
        for ok, skip, name in points(p.read_text(errors='replace').splitlines()):
            if skip:
                n_skip += 1
                skips.append(f'{p.stem}: {name}')
            elif ok:
                n_ok += 1
            else:
                n_fail += 1
        print(f'# {p.stem}: {n_ok} passed, {n_fail} failed, {n_skip} skipped')
        passed += n_ok
        failed += n_fail
        skipped += n_skip
    for s in skips:
        print(f'# skipped: {s}')
    print(f'# {skipped} skipped')
    print(f'{passed} passed, {failed} failed')
    return 1 if failed or passed == 0 else 0


if __name__ == '__main__':
    sys.exit(main())
