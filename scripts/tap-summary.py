#!/usr/bin/env python3
"""Counts the results in the TAP files of a test run and prints the summary.

Each file is one step of `make test`. A test point is a line `ok ...` or
`not ok ...`; `# SKIP` marks a skip. Nested (K)TAP is read as upstream writes
it: a subtest block is indented and its parent's line only summarises it, so
only the innermost points are counted. The last line printed is exactly
`N passed, N failed`; skips are listed above it, never hidden (when one file
skips more than a few points for the same reason, they are counted on one
line that names the file listing them). A file's `# summary: ...` lines (the
upstream selftests' counts) are repeated under its counts.
"""
import re
import sys
from pathlib import Path

POINT = re.compile(r'^(\s*)(ok|not ok)\b\s*(\d+)?\s*-?\s*(.*)$')
SUMMARY = re.compile(r'^# summary: (.*)$')
SKIP_REASON = re.compile(r'#\s*SKIP\b\s*(.*)$', re.I)
# More skips than this with the same reason in one file are counted, not listed.
SKIPS_LISTED = 5


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
        lines = p.read_text(errors='replace').splitlines()
        by_reason = {}
        for ok, skip, name in points(lines):
            if skip:
                n_skip += 1
                m = SKIP_REASON.search(name)
                by_reason.setdefault(m.group(1).strip() if m else '', []).append(name)
            elif ok:
                n_ok += 1
            else:
                n_fail += 1
        for reason, names in by_reason.items():
            if len(names) > SKIPS_LISTED:
                skips.append(f'{p.stem}: {len(names)} points "# SKIP {reason}" (listed in {p})')
            else:
                skips += [f'{p.stem}: {name}' for name in names]
        print(f'# {p.stem}: {n_ok} passed, {n_fail} failed, {n_skip} skipped')
        for line in lines:
            m = SUMMARY.match(line)
            if m:
                print(f'#   {m.group(1)}')
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
