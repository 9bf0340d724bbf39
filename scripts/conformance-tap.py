#!/usr/bin/env python3
"""The upstream iommufd and vfio selftests' results, against a baseline, as TAP.

Usage: conformance-tap.py CONSOLE_LOG... EXPECTED_DIR [--write-expected]

Each CONSOLE_LOG is a VM's console (scripts/vm-tasks/conformance writes one
section per program: `### CONFORMANCE NAME`, its KTAP output, then
`### CONFORMANCE-END NAME rc=RC seconds=S`; NAME is PROGRAM@DEVICE for a run
on another device than edu, such as the igb VM's).  EXPECTED_DIR holds NAME.expected
for each program: the cases (as the harness names them, fixture[.variant].test)
that pass on our kernel today, one a line, `#` comments allowed.

Every case of the harness becomes one test point:
  * an expected case: `ok` when it passes, `not ok` when it fails, is skipped
    by the harness or is missing from the output (crash, timeout): a
    regression;
  * a case that passes but is not expected: `ok`, marked newly passing (add it
    to the list);
  * any other case: `ok ... # SKIP not yet passing`, so it is listed but does
    not fail the run.
A `# summary:` line per program says how many cases pass out of how many
(the harness's plan), by fixture; scripts/tap-summary.py repeats it.

With --write-expected the cases that passed are added to the lists (each
program seen in the log; a list keeps what it had, so a regression is never
accepted this way: a case leaves a list only by hand) and nothing is printed.
"""
import re
import sys
from collections import OrderedDict
from pathlib import Path

START = re.compile(r'^### CONFORMANCE (\S+)\s*$')
END = re.compile(r'^### CONFORMANCE-END (\S+)(?: rc=(\d+))?(?: seconds=(\d+))?')
PLAN = re.compile(r'^1\.\.(\d+)\s*$')
# ok 12 fixture.variant.test # SKIP reason   (the harness's result lines)
RESULT = re.compile(r'^(ok|not ok) (\d+) (\S+)(?:\s+#\s*(\w+)?\s*(.*))?$')
# Kernel console lines are stamped "[  12.345678]"; a task line may carry one
# in the middle when a message got in its way.
STAMP = re.compile(r'\[ *\d+\.\d+\](\[ *[CT]\d+\])? ')


EXPECTED_HEAD = """\
# The cases of the kernel's own %s selftest (tools/testing/selftests/{iommu,vfio},
# built unmodified) that pass on our kernel, one a line, as the harness names
# them.  Each is a test point of `make test` that must stay ok; the other cases
# are reported as skipped ("not yet passing").  To add the cases a VM run saw
# pass (make test says "newly passing"):
#   scripts/conformance-tap.py out/logs/vm-tests.console \\
#       tools/testing/conformance --write-expected
# A case leaves this list only by hand.
"""


def sections(lines):
    """-> OrderedDict name -> dict(lines, rc, seconds, ended)."""
    out = OrderedDict()
    cur = None
    for line in lines:
        line = line.rstrip('\r\n')
        m = END.match(line)
        if m and cur is not None:
            cur['ended'] = True
            cur['rc'] = int(m.group(2)) if m.group(2) else None
            cur['seconds'] = int(m.group(3)) if m.group(3) else None
            cur = None
            continue
        m = START.match(line)
        if m:
            cur = out.setdefault(m.group(1), dict(lines=[], rc=None, seconds=None, ended=False))
            continue
        if line.startswith('### '):
            cur = None
            continue
        if cur is not None:
            cur['lines'].append(line)
    return out


def results(lines):
    """-> (plan or None, OrderedDict case -> (status, reason)), status one of
    pass, fail, skip."""
    plan = None
    res = OrderedDict()
    for line in lines:
        m = STAMP.search(line)
        if m and m.start() > 0:
            line = line[:m.start()].rstrip()
        m = PLAN.match(line)
        if m and plan is None:
            plan = int(m.group(1))
            continue
        m = RESULT.match(line)
        if not m:
            continue
        ok, _, case, directive, reason = m.groups()
        directive = (directive or '').upper()
        if ok == 'not ok':
            status = 'fail'
        elif directive == 'SKIP':
            status = 'skip'
        else:
            status = 'pass'     # also XFAIL/XPASS: the harness counts them ok
        res[case] = (status, (reason or '').strip())
    return plan, res


def read_expected(path):
    if not path.exists():
        return None
    out = []
    for line in path.read_text().splitlines():
        line = line.split('#', 1)[0].strip()
        if line:
            out.append(line)
    return out


def fixture(case):
    return case.split('.', 1)[0]


def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    write = '--write-expected' in sys.argv[1:]
    if len(args) < 2:
        sys.stderr.write(__doc__)
        return 2
    logs, expdir = [Path(a) for a in args[:-1]], Path(args[-1])
    text = []
    for log in logs:
        text += log.read_text(errors='replace').splitlines() if log.exists() else []
    secs = sections(text)
    log = ', '.join(str(p) for p in logs)

    if write:
        for name, sec in secs.items():
            _, res = results(sec['lines'])
            p = expdir / (name + '.expected')
            old = read_expected(p) or []
            passed = sorted(set(old) | {c for c, (s, _) in res.items() if s == 'pass'})
            p.write_text(EXPECTED_HEAD % name + ''.join(c + '\n' for c in passed))
            sys.stderr.write('%s: %d cases (%d new)\n' % (p, len(passed), len(passed) - len(old)))
        return 0

    names = list(secs)
    for p in sorted(expdir.glob('*.expected')):
        if p.stem not in secs:
            names.append(p.stem)

    points = []      # (ok, description)
    summaries = []
    diags = []
    totals = []
    for name in names:
        sec = secs.get(name)
        expected = read_expected(expdir / (name + '.expected')) or []
        exp_set = set(expected)
        plan, res = results(sec['lines']) if sec else (None, OrderedDict())
        total = max(plan or 0, len(res))
        n = {'pass': 0, 'fail': 0, 'skip': 0}
        by_fix = OrderedDict()
        for case, (status, _) in res.items():
            n[status] += 1
            f = by_fix.setdefault(fixture(case), [0, 0])
            f[1] += 1
            if status == 'pass':
                f[0] += 1
        lost = total - len(res)
        newly = [c for c, (s, _) in res.items() if s == 'pass' and c not in exp_set]
        regress = [c for c in expected if res.get(c, ('missing',))[0] != 'pass']

        if sec is None:
            how = 'did not run (no section in %s)' % log
        elif not sec['ended']:
            how = 'did not finish (no end marker: VM killed or crashed?)'
        else:
            how = 'exit status %s in %ss' % (sec['rc'], sec['seconds'])
        summary = ('  %s: %d of %d cases pass '
                   '(%d fail, %d skipped by the harness%s; %d expected, %d regressed, %d newly passing; %s)'
                   % (name, n['pass'], total, n['fail'], n['skip'],
                      ', %d lost' % lost if lost else '', len(expected), len(regress), len(newly), how))
        summaries.append(summary)
        summaries.append('  %s by fixture (passing/run): %s' % (
            name, ', '.join('%s %d/%d' % (f, a, b) for f, (a, b) in by_fix.items()) or 'none'))
        totals.append((name, n['pass'], total))
        if lost:
            diags.append('%s: %d of the %d planned cases have no result (the harness crashed or was '
                  'killed: rc=%s)' % (name, lost, total, sec['rc'] if sec else None))

        for case, (status, reason) in res.items():
            desc = '%s: %s' % (name, case)
            if case in exp_set:
                if status == 'pass':
                    points.append((True, desc))
                else:
                    why = 'skipped by the harness' if status == 'skip' else 'failed'
                    points.append((False, '%s (expected to pass, %s%s)' % (
                        desc, why, ': ' + reason if reason else '')))
            elif status == 'pass':
                points.append((True, '%s (newly passing: add it to %s.expected)' % (desc, name)))
            else:
                extra = ' (harness skip: %s)' % reason if status == 'skip' and reason else ''
                points.append((True, '%s # SKIP not yet passing%s' % (desc, extra)))
        for case in expected:
            if case not in res:
                points.append((False, '%s: %s (expected to pass, missing from the output: %s)' % (
                    name, case, how)))

    print('TAP version 13')
    print('# summary: upstream iommufd and vfio selftests: %d of %d cases pass (%s)' % (
        sum(t[1] for t in totals), sum(t[2] for t in totals),
        ', '.join('%s %d/%d' % t for t in totals)))
    for line in summaries:
        print('# summary: ' + line)
    for line in diags:
        print('# ' + line)
    print('1..%d' % len(points))
    for i, (ok, desc) in enumerate(points, 1):
        print('%s %d - %s' % ('ok' if ok else 'not ok', i, desc))
    return 0


if __name__ == '__main__':
    sys.exit(main())
