#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The Kconfig matrix of iommufd and VFIO, as TAP (see run.sh).

For each architecture (x86_64 from tinyconfig; powerpc64le from
ppc64le_defconfig, where SPAPR_TCE_IOMMU is on), it resolves every
combination a user can ask for of the project's symbols: each one n, m, y
(where it is a tristate) or not asked at all (left to Kconfig's defaults).
A request is a .config fragment on top of the base config, resolved the way
`make olddefconfig` does it.  The matrix is resolved by kconfig-batch (the
kernel's own kconfig code, one parse for all requests); a sample of requests
is also put through the real `make olddefconfig` and the two .config files
must be identical.

Then it checks, on every resolved config, the rules the review asked for, the
defaults, that the results are exactly those of a small reference model of the
rules (model() below), and that the checks are not vacuous: RUST, PCI and
the IOMMU support stay on and VFIO really is on where a rule is about VFIO.
"""
import argparse
import itertools
import os
import random
import re
import subprocess
import sys
import threading
import time

# The symbols a user can ask for, in the order a request lists them.
ASKABLE = ['RUST', 'IOMMUFD', 'VFIO', 'VFIO_GROUP', 'VFIO_CONTAINER',
           'VFIO_DEVICE_CDEV', 'IOMMUFD_VFIO_CONTAINER', 'VFIO_NOIOMMU',
           'VFIO_PCI', 'IOMMUFD_TEST']
PROJECT = ASKABLE[1:]
# What kconfig-batch reports for every request.
SHOWN = ['RUST', 'MODULES', 'PCI', 'MMU', 'IOMMU_SUPPORT', 'IOMMU_API',
         'SPAPR_TCE_IOMMU'] + PROJECT + [
         'VFIO_PCI_CORE', 'VFIO_VIRQFD', 'VFIO_PCI_INTX', 'IRQ_BYPASS_MANAGER',
         'EVENTFD', 'IOMMUFD_DRIVER', 'IOMMUFD_ENGINE']
# Kconfig's warnings about the symbols of these files, and those they
# select, fail the run.
WATCH = ['drivers/iommu/iommufd/Kconfig', 'drivers/vfio/Kconfig']
# Lines dropped from the base, so that "not asked" means Kconfig's default.
# RUST is dropped too: every request says RUST=y or RUST=n itself.
STRIP = re.compile(r'^(# )?CONFIG_(RUST|IOMMUFD\w*|VFIO\w*)(=| is not set)')

ARCHES = {
    'x86_64': dict(
        make=['ARCH=x86_64'], start='tinyconfig', spapr=False,
        # tinyconfig lacks modules, PCI and the IOMMU menu; the debug options
        # let IOMMUFD_TEST be asked for.
        fragment=dict(MODULES='y', RUST='y', PCI='y', IOMMU_SUPPORT='y',
                      DEBUG_KERNEL='y', FAULT_INJECTION='y',
                      RUNTIME_TESTING_MENU='y'),
        must=dict(X86_64='y')),
    'powerpc': dict(
        make=['ARCH=powerpc'], start='ppc64le_defconfig', spapr=True,
        # Rust needs MODVERSIONS off (or gendwarfksyms).
        fragment=dict(MODVERSIONS='n', RUST='y', DEBUG_KERNEL='y',
                      FAULT_INJECTION='y', RUNTIME_TESTING_MENU='y'),
        must=dict(PPC64='y', CPU_LITTLE_ENDIAN='y', SPAPR_TCE_IOMMU='y',
                  MODULES='y', PCI='y', IOMMU_SUPPORT='y')),
}

TRI = {'n': 0, 'm': 1, 'y': 2}


def tmin(a, b):
    return a if TRI[a] <= TRI[b] else b


def on(v):
    return v in ('m', 'y')


def fmt(req):
    return ' '.join(f'{k}={req[k]}' for k in ASKABLE if k in req)


# ---------------------------------------------------------------- requests

def requests():
    """Every combination a user can ask for; a request is a dict of asked
    symbols (a symbol not in it is left to its default)."""
    out, seen = [], set()

    def add(**kw):
        req = {k: v for k, v in kw.items() if v is not None}
        key = fmt(req)
        if key not in seen:
            seen.add(key)
            out.append(req)

    ask3 = [None, 'y', 'n']
    bools = ['VFIO_GROUP', 'VFIO_CONTAINER', 'VFIO_DEVICE_CDEV',
             'IOMMUFD_VFIO_CONTAINER', 'VFIO_NOIOMMU']
    for fd in 'nmy':
        # The core: VFIO on, each interface option asked y, n or not at all.
        for vfio in 'my':
            for vals in itertools.product(ask3, repeat=len(bools)):
                add(RUST='y', IOMMUFD=fd, VFIO=vfio, **dict(zip(bools, vals)))
        # VFIO off: its options asked for anyway must not turn anything on.
        for vals in itertools.product([None, 'y'], repeat=len(bools)):
            add(RUST='y', IOMMUFD=fd, VFIO='n', **dict(zip(bools, vals)))
        add(RUST='y', IOMMUFD=fd, VFIO='n', **{b: 'n' for b in bools})
        # vfio-pci and the iommufd selftest option, against the interfaces.
        for vfio in 'nmy':
            for pci in [None, 'n', 'm', 'y']:
                for test in ask3:
                    for grp in [None, 'n']:
                        for cont in [None, 'n']:
                            add(RUST='y', IOMMUFD=fd, VFIO=vfio, VFIO_PCI=pci,
                                IOMMUFD_TEST=test, VFIO_GROUP=grp,
                                VFIO_CONTAINER=cont)
        # Without Rust nothing of ours can be had, whatever is asked.
        for vfio in 'nmy':
            for grp in ['y', 'n']:
                add(RUST='n', IOMMUFD=fd, VFIO=vfio, VFIO_GROUP=grp,
                    **{k: 'y' for k in bools if k != 'VFIO_GROUP'},
                    VFIO_PCI='y', IOMMUFD_TEST='y')
    return out


# Requests also put through the real `make olddefconfig` (plus one drawn at
# random, with a fixed seed per architecture).
SAMPLES = [
    dict(RUST='y', IOMMUFD='y', VFIO='y'),
    dict(RUST='y', IOMMUFD='m', VFIO='y', VFIO_GROUP='n'),
    dict(RUST='y', IOMMUFD='y', VFIO='y', VFIO_CONTAINER='n',
         VFIO_NOIOMMU='y'),
    dict(RUST='n', IOMMUFD='y', VFIO='y', VFIO_GROUP='y', VFIO_CONTAINER='y',
         VFIO_DEVICE_CDEV='y', IOMMUFD_VFIO_CONTAINER='y', VFIO_NOIOMMU='y',
         VFIO_PCI='y', IOMMUFD_TEST='y'),
]


# ---------------------------------------------------------------- the model

def model(req, spapr):
    """What the rules say a request resolves to (base: PCI, modules and the
    IOMMUFD_TEST debug dependencies on)."""
    r = {k: 'n' for k in PROJECT}
    if req['RUST'] == 'n':
        return r
    fd = r['IOMMUFD'] = req['IOMMUFD']
    vfio = req['VFIO']
    if fd == 'm':                       # depends on IOMMUFD || !IOMMUFD
        vfio = tmin(vfio, 'm')
    r['VFIO'] = vfio
    if on(fd) and req.get('IOMMUFD_TEST') == 'y':
        r['IOMMUFD_TEST'] = 'y'
    if vfio == 'n':
        return r
    # select VFIO_GROUP if SPAPR_TCE_IOMMU || IOMMUFD=n; default y
    group = 'y' if spapr or fd == 'n' else req.get('VFIO_GROUP', 'y')
    # depends on IOMMUFD && !SPAPR_TCE_IOMMU; default !VFIO_GROUP;
    # select VFIO_DEVICE_CDEV if !VFIO_GROUP
    if on(fd) and not spapr:
        cdev = req.get('VFIO_DEVICE_CDEV', 'n' if group == 'y' else 'y')
        if group == 'n':
            cdev = 'y'
    else:
        cdev = 'n'
    # depends on VFIO_GROUP; select VFIO_CONTAINER if IOMMUFD=n; default y
    if group == 'n':
        cont = 'n'
    elif fd == 'n':
        cont = 'y'
    else:
        cont = req.get('VFIO_CONTAINER', 'y')
    # depends on IOMMUFD, VFIO_GROUP && !VFIO_CONTAINER; default y there
    compat = 'n'
    if on(fd) and group == 'y' and cont == 'n':
        compat = req.get('IOMMUFD_VFIO_CONTAINER', 'y')
    # depends on VFIO_GROUP && (VFIO_CONTAINER || IOMMUFD_VFIO_CONTAINER)
    noiommu = 'n'
    if group == 'y' and 'y' in (cont, compat):
        noiommu = req.get('VFIO_NOIOMMU', 'n')
    r.update(VFIO_GROUP=group, VFIO_DEVICE_CDEV=cdev, VFIO_CONTAINER=cont,
             IOMMUFD_VFIO_CONTAINER=compat, VFIO_NOIOMMU=noiommu,
             VFIO_PCI=tmin(req.get('VFIO_PCI', 'n'), vfio))
    return r


# ---------------------------------------------------------------- checks
# (name, arches it means something on or None, applies(req, res), holds(req, res))

def only_asked(req, *keys):
    return {k for k in req if not k.startswith('_')} <= \
        {'RUST', 'IOMMUFD', 'VFIO', *keys}


def vfio_on(req, res):
    return req['RUST'] == 'y' and on(res['VFIO'])


CHECKS = [
    ('every config keeps RUST, MODULES, PCI, MMU, IOMMU_SUPPORT on '
     '(and SPAPR_TCE_IOMMU on powerpc): the checks below are not vacuous',
     None, lambda q, s: q['RUST'] == 'y',
     lambda q, s: all(s[k] == 'y' for k in
                      ('RUST', 'MODULES', 'PCI', 'MMU', 'IOMMU_SUPPORT'))
     and s['SPAPR_TCE_IOMMU'] == ('y' if q['_spapr'] else 'n')),
    ('IOMMUFD is what was asked (n, m or y)',
     None, lambda q, s: q['RUST'] == 'y',
     lambda q, s: s['IOMMUFD'] == q['IOMMUFD']),
    ('VFIO is what was asked, except y becomes m when IOMMUFD=m',
     None, lambda q, s: q['RUST'] == 'y',
     lambda q, s: s['VFIO'] == (tmin(q['VFIO'], 'm') if q['IOMMUFD'] == 'm'
                                else q['VFIO'])),
    ('VFIO cannot be y when IOMMUFD is m (VFIO=y asked, IOMMUFD=m)',
     None, lambda q, s: q['RUST'] == 'y' and q['IOMMUFD'] == 'm'
     and q['VFIO'] == 'y',
     lambda q, s: s['VFIO'] == 'm'),
    ('never VFIO without the group or the cdev',
     None, vfio_on,
     lambda q, s: 'y' in (s['VFIO_GROUP'], s['VFIO_DEVICE_CDEV'])),
    ('never the cdev without IOMMUFD',
     ['x86_64'], lambda q, s: s['VFIO_DEVICE_CDEV'] == 'y',
     lambda q, s: on(s['IOMMUFD'])),
    ('never the cdev with SPAPR_TCE_IOMMU, even when asked for',
     ['powerpc'], vfio_on, lambda q, s: s['VFIO_DEVICE_CDEV'] == 'n'),
    ('SPAPR_TCE_IOMMU forces the group on, even when asked off',
     ['powerpc'], lambda q, s: vfio_on(q, s) and q.get('VFIO_GROUP') == 'n',
     lambda q, s: s['VFIO_GROUP'] == 'y'),
    ('IOMMUFD=n gives the group and the native container',
     None, lambda q, s: vfio_on(q, s) and s['IOMMUFD'] == 'n',
     lambda q, s: s['VFIO_GROUP'] == 'y' and s['VFIO_CONTAINER'] == 'y'),
    ('the engine (IOMMUFD_ENGINE) is built as IOMMUFD or VFIO is, '
     'whichever is more: VFIO keeps its container in it without IOMMUFD',
     None, lambda q, s: q['RUST'] == 'y',
     lambda q, s: s['IOMMUFD_ENGINE'] ==
     max(s['IOMMUFD'], s['VFIO'], key=lambda v: TRI[v])),
    ('the native container needs the group',
     None, lambda q, s: s['VFIO_CONTAINER'] == 'y',
     lambda q, s: s['VFIO_GROUP'] == 'y' and on(s['VFIO'])),
    ("iommufd's compat container only with IOMMUFD and the group, "
     'and without the native container',
     None, lambda q, s: s['IOMMUFD_VFIO_CONTAINER'] == 'y',
     lambda q, s: on(s['IOMMUFD']) and s['VFIO_GROUP'] == 'y'
     and s['VFIO_CONTAINER'] == 'n'),
    ('no-IOMMU mode only with the group and a container',
     None, lambda q, s: s['VFIO_NOIOMMU'] == 'y',
     lambda q, s: s['VFIO_GROUP'] == 'y'
     and 'y' in (s['VFIO_CONTAINER'], s['IOMMUFD_VFIO_CONTAINER'])),
    ('VFIO=n turns every VFIO option off, even those asked for',
     None, lambda q, s: s['VFIO'] == 'n',
     lambda q, s: all(s[k] == 'n' for k in
                      ('VFIO_GROUP', 'VFIO_CONTAINER', 'VFIO_DEVICE_CDEV',
                       'IOMMUFD_VFIO_CONTAINER', 'VFIO_NOIOMMU', 'VFIO_PCI',
                       'VFIO_PCI_CORE'))),
    ('vfio-pci: at most what VFIO is, and what was asked within that; '
     'it brings VFIO_PCI_CORE, VFIO_VIRQFD, IRQ_BYPASS_MANAGER, EVENTFD',
     None, lambda q, s: vfio_on(q, s) and 'VFIO_PCI' in q,
     lambda q, s: s['VFIO_PCI'] == tmin(q['VFIO_PCI'], s['VFIO'])
     and (s['VFIO_PCI'] == 'n' or (
         TRI[s['VFIO_PCI_CORE']] >= TRI[s['VFIO_PCI']]
         and s['VFIO_VIRQFD'] == 'y' and s['EVENTFD'] == 'y'
         and TRI[s['IRQ_BYPASS_MANAGER']] >= TRI[s['VFIO_PCI']]))),
    ('IOMMUFD_TEST only with IOMMUFD, and there when asked for',
     None, lambda q, s: q['RUST'] == 'y' and 'IOMMUFD_TEST' in q,
     lambda q, s: s['IOMMUFD_TEST'] == ('y' if q['IOMMUFD_TEST'] == 'y'
                                        and on(s['IOMMUFD']) else 'n')),
    ('defaults, nothing else asked: group and native container on, '
     'cdev, compat container, no-IOMMU and vfio-pci off',
     None, lambda q, s: vfio_on(q, s) and only_asked(q),
     lambda q, s: (s['VFIO_GROUP'], s['VFIO_CONTAINER'],
                   s['VFIO_DEVICE_CDEV'], s['IOMMUFD_VFIO_CONTAINER'],
                   s['VFIO_NOIOMMU'], s['VFIO_PCI']) ==
     ('y', 'y', 'n', 'n', 'n', 'n')),
    ('defaults, only the group asked off (with IOMMUFD): the cdev comes on, '
     'no container',
     ['x86_64'], lambda q, s: vfio_on(q, s) and on(q['IOMMUFD'])
     and only_asked(q, 'VFIO_GROUP') and q.get('VFIO_GROUP') == 'n',
     lambda q, s: (s['VFIO_GROUP'], s['VFIO_DEVICE_CDEV'],
                   s['VFIO_CONTAINER'], s['IOMMUFD_VFIO_CONTAINER']) ==
     ('n', 'y', 'n', 'n')),
    ("defaults, only the native container asked off (with IOMMUFD): "
     "iommufd's compat container takes its place",
     None, lambda q, s: vfio_on(q, s) and on(q['IOMMUFD'])
     and only_asked(q, 'VFIO_CONTAINER') and q.get('VFIO_CONTAINER') == 'n',
     lambda q, s: (s['VFIO_GROUP'], s['VFIO_CONTAINER'],
                   s['IOMMUFD_VFIO_CONTAINER']) == ('y', 'n', 'y')),
    ('without RUST none of our symbols can be had, even all asked y',
     None, lambda q, s: q['RUST'] == 'n',
     lambda q, s: s['RUST'] == 'n' and all(s[k] == 'n' for k in PROJECT)),
    ('every config is exactly what the reference model of the rules gives',
     None, lambda q, s: True,
     lambda q, s: all(s[k] == v for k, v in
                      model(q, q['_spapr']).items())),
]

# Setups a user may want, each of which some request must reach.
REACH = [
    ('cdev only, IOMMUFD=y VFIO=y', ['x86_64'],
     dict(IOMMUFD='y', VFIO='y', VFIO_GROUP='n', VFIO_DEVICE_CDEV='y')),
    ('cdev only, IOMMUFD=m VFIO=m', ['x86_64'],
     dict(IOMMUFD='m', VFIO='m', VFIO_GROUP='n', VFIO_DEVICE_CDEV='y')),
    ('group + native container + cdev', ['x86_64'],
     dict(VFIO='y', VFIO_GROUP='y', VFIO_CONTAINER='y', VFIO_DEVICE_CDEV='y')),
    ('group + compat container + cdev', ['x86_64'],
     dict(VFIO='y', VFIO_GROUP='y', IOMMUFD_VFIO_CONTAINER='y',
          VFIO_DEVICE_CDEV='y')),
    ('group + native container, IOMMUFD=n', None,
     dict(IOMMUFD='n', VFIO='y', VFIO_GROUP='y', VFIO_CONTAINER='y')),
    ('group + native container, IOMMUFD=y VFIO=y', None,
     dict(IOMMUFD='y', VFIO='y', VFIO_GROUP='y', VFIO_CONTAINER='y',
          VFIO_DEVICE_CDEV='n')),
    ('group + compat container, IOMMUFD=m VFIO=m', None,
     dict(IOMMUFD='m', VFIO='m', VFIO_GROUP='y', VFIO_CONTAINER='n',
          IOMMUFD_VFIO_CONTAINER='y')),
    ('group with no container (iommufd only)', None,
     dict(VFIO='y', VFIO_GROUP='y', VFIO_CONTAINER='n',
          IOMMUFD_VFIO_CONTAINER='n')),
    ('no-IOMMU with the native container', None,
     dict(VFIO='y', VFIO_NOIOMMU='y', VFIO_CONTAINER='y')),
    ('no-IOMMU with the compat container', None,
     dict(VFIO='y', VFIO_NOIOMMU='y', IOMMUFD_VFIO_CONTAINER='y')),
    ('vfio-pci built in', None, dict(VFIO='y', VFIO_PCI='y')),
    ('vfio-pci as a module', None, dict(VFIO='m', VFIO_PCI='m')),
    ('IOMMUFD_TEST with IOMMUFD=m', None, dict(IOMMUFD='m', IOMMUFD_TEST='y')),
]


# ---------------------------------------------------------------- running

class Arch:
    def __init__(self, name, args):
        self.name = name
        self.cfg = ARCHES[name]
        self.tree = args.tree
        self.dir = os.path.join(args.out, f'kconfig-{name}')
        self.logdir = args.logdir
        self.here = os.path.dirname(os.path.abspath(__file__))
        self.tap = []           # (ok, name, diagnostics)
        self.stats = {}

    def point(self, ok, name, diag=()):
        self.tap.append((ok, f'{self.name}: {name}', list(diag)))

    def make(self, step, *targets):
        log = os.path.join(self.logdir, f'kconfig-{self.name}-{step}.log')
        cmd = ['make', '-C', self.tree, f'O={self.dir}', 'LLVM=-19', '-s',
               *self.cfg['make'], *targets]
        with open(log, 'w') as f:
            r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode:
            with open(log) as f:
                tail = f.read().splitlines()[-15:]
            raise RuntimeError(f'{" ".join(cmd)} failed (log {log})', tail)

    def config(self, path=None):
        vals = {}
        with open(path or os.path.join(self.dir, '.config')) as f:
            for line in f:
                m = re.match(r'^CONFIG_(\w+)=(.*)$', line)
                if m:
                    vals[m.group(1)] = m.group(2)
                m = re.match(r'^# CONFIG_(\w+) is not set$', line)
                if m:
                    vals[m.group(1)] = 'n'
        return vals

    @staticmethod
    def lines(values):
        """A .config fragment: CONFIG_X=v, or '# CONFIG_X is not set'."""
        return ''.join(f'CONFIG_{k}={v}\n' if v != 'n' else
                       f'# CONFIG_{k} is not set\n' for k, v in values.items())

    @staticmethod
    def asked(req):
        return {k: req[k] for k in ASKABLE if k in req}

    def setup(self):
        """The base config, kconfig-batch, and the environment it needs."""
        os.makedirs(self.dir, exist_ok=True)
        for f in ('.config', 'include/config/auto.conf'):
            p = os.path.join(self.dir, f)
            if os.path.exists(p):
                os.unlink(p)
        self.make('start', self.cfg['start'])
        cfgpath = os.path.join(self.dir, '.config')
        frag = self.cfg['fragment']
        with open(cfgpath) as f:
            kept = [l for l in f if not re.match(
                r'^(# )?CONFIG_(%s)(=| is not set)' % '|'.join(frag), l)]
        with open(cfgpath, 'w') as f:
            f.writelines(kept)
            f.write(self.lines(frag))
        # auto.conf is only written when missing; with it comes
        # auto.conf.cmd, the environment Kconfig was evaluated in.
        autoconf = os.path.join(self.dir, 'include/config/auto.conf')
        if os.path.exists(autoconf):
            os.unlink(autoconf)
        self.make('base', 'olddefconfig')
        got = self.config()
        bad = [f'{k}: want {v}, got {got.get(k, "n")}'
               for k, v in {**frag, **self.cfg['must']}.items()
               if got.get(k, 'n') != v]
        self.point(not bad, f'base config ({self.cfg["start"]} + '
                   f'{" ".join(f"{k}={v}" for k, v in frag.items())})', bad)
        if bad:
            return False
        with open(cfgpath) as f:
            self.base = ''.join(l for l in f if not STRIP.match(l))
        self.basepath = os.path.join(self.dir, 'base-stripped.config')
        with open(self.basepath, 'w') as f:
            f.write(self.base)

        self.env = dict(os.environ)
        with open(os.path.join(self.dir, 'include/config/auto.conf.cmd')) as f:
            for line in f:
                m = re.match(r'^ifneq "\$\((\w+)\)" "(.*)"$', line.rstrip('\n'))
                if m:
                    self.env[m.group(1)] = m.group(2)
        # kconfig-batch: linked like scripts/kconfig/conf, from its objects.
        kc = os.path.join(self.tree, 'scripts/kconfig')
        with open(os.path.join(self.dir, 'scripts/kconfig/.conf.cmd')) as f:
            link = f.readline().split(':=', 1)[1].split()
        cc = link[0]
        ldflags = [a for a in link[1:] if a.startswith('-f')
                   or a.startswith('-l') or a.startswith('-Wl')]
        objs = [a for a in link if a.endswith('.o')
                and not a.endswith('/conf.o')]
        cmd = [cc, '-O2', '-std=gnu11', '-Wall', '-Werror',
               '-I', os.path.join(self.tree, 'scripts/include'),
               '-I', kc, '-I', 'scripts/kconfig',
               '-o', 'kconfig-batch', os.path.join(self.here, 'kconfig-batch.c'),
               *objs, *ldflags]
        r = subprocess.run(cmd, cwd=self.dir, capture_output=True, text=True)
        self.point(r.returncode == 0, 'kconfig-batch builds from the kconfig '
                   'objects', [] if r.returncode == 0 else
                   [' '.join(cmd)] + r.stderr.splitlines()[-10:])
        return r.returncode == 0

    def resolve(self, reqs, samples):
        """Runs kconfig-batch on every request; returns results, warnings."""
        text = [f'base {self.basepath}']
        sample_files = {}
        for i, req in enumerate(reqs):
            text.append(f'case {i} ' + ' '.join(
                f'{k}={req[k]}' for k in ASKABLE if k in req))
            if i in samples:
                sample_files[i] = os.path.join(self.dir, f'batch-{i}.config')
                text.append(f'write {sample_files[i]}')
        t = time.time()
        r = subprocess.run([os.path.join(self.dir, 'kconfig-batch'), 'Kconfig',
                            *(f'--watch={f}' for f in WATCH), *SHOWN],
                           cwd=self.dir, env=self.env,
                           input='\n'.join(text) + '\n', capture_output=True,
                           text=True)
        self.stats['batch_s'] = time.time() - t
        results, warnings, parse_out, cur = {}, {}, [], None
        parsed, watched = False, 0
        for line in r.stdout.splitlines():
            if line == 'parsed':
                parsed = True
            elif line.startswith('watching '):
                watched = int(line.split()[1])
            elif line.startswith('case '):
                cur = int(line.split()[1])
            elif line.startswith('result '):
                f = line.split()
                results[int(f[1])] = dict(x.split('=', 1) for x in f[2:])
                cur = None
            elif line.startswith('written '):
                pass
            elif cur is not None:
                warnings.setdefault(cur, []).append(line)
            elif line.strip():
                parse_out.append(line)
        ok = r.returncode == 0 and parsed and len(results) == len(reqs) \
            and watched >= len(PROJECT)
        diag = [f'{watched} symbols watched for warnings'] + ([] if ok else [
            f'exit {r.returncode}, {len(results)} of {len(reqs)} resolved'] +
            (parse_out + r.stderr.splitlines())[-15:])
        self.point(ok, f'kconfig-batch resolves all {len(reqs)} requests',
                   diag)
        self.point(not parse_out, 'Kconfig parses without warnings',
                   parse_out[:15])
        undefined = sorted({k for res in results.values()
                            for k, v in res.items() if v == 'undefined'})
        self.point(not undefined, 'every symbol checked is defined',
                   undefined)
        return (results if ok else None), warnings, sample_files

    def cross_check(self, reqs, results, sample_files):
        for i, path in sorted(sample_files.items()):
            with open(os.path.join(self.dir, '.config'), 'w') as f:
                f.write(self.base + self.lines(self.asked(reqs[i])))
            diag = []
            try:
                self.make(f'sample-{i}', 'olddefconfig')
                with open(os.path.join(self.dir, '.config')) as f:
                    real = f.read().splitlines()
                with open(path) as f:
                    batch = f.read().splitlines()
                ok = real == batch
                vals = self.config(path)
                lazy = [f'{k}: kconfig-batch said {v}, wrote '
                        f'{vals.get(k, "n")}' for k, v in results[i].items()
                        if v != 'undefined' and vals.get(k, 'n') != v]
                if lazy:
                    ok, diag = False, lazy
                elif not ok:
                    import difflib
                    diag = list(difflib.unified_diff(
                        batch, real, 'kconfig-batch', 'make olddefconfig',
                        lineterm='', n=0))[:20]
            except RuntimeError as e:
                ok, diag = False, [e.args[0], *e.args[1]]
            self.point(ok, 'make olddefconfig gives the very .config of '
                       f'kconfig-batch for {fmt(reqs[i])}', diag)

    def run(self):
        t0 = time.time()
        try:
            if not self.setup():
                return
            self.stats['setup_s'] = time.time() - t0
            reqs = requests()
            spapr = self.cfg['spapr']
            for q in reqs:
                q['_spapr'] = spapr
            index = {fmt(q): i for i, q in enumerate(reqs)}
            rnd = random.Random(self.name)
            samples = {index[fmt(dict(s, _spapr=spapr))] for s in SAMPLES}
            while len(samples) < len(SAMPLES) + 1:
                samples.add(rnd.randrange(len(reqs)))
            results, warnings, sample_files = self.resolve(reqs, samples)
            if results is None:
                return
            self.stats['configs'] = len(reqs)
            self.check(reqs, results, warnings)
            t1 = time.time()
            self.cross_check(reqs, results, sample_files)
            self.stats['olddefconfig_s'] = time.time() - t1
        except RuntimeError as e:
            self.point(False, 'kconfig run', [e.args[0], *e.args[1]])
        except Exception as e:      # report, never hang the TAP stream
            self.point(False, 'kconfig run', [repr(e)])
        finally:
            self.stats['total_s'] = time.time() - t0

    def check(self, reqs, results, warnings):
        bad = [f'{fmt(reqs[i])}: {w}' for i, ws in sorted(warnings.items())
               for w in ws if w.strip()]
        self.point(not bad, 'no Kconfig warnings (unmet dependencies, '
                   'invalid values) in any config', bad[:15])
        for name, arches, applies, holds in CHECKS:
            if arches and self.name not in arches:
                continue
            n, fails = 0, []
            for i, q in enumerate(reqs):
                s = results[i]
                if not applies(q, s):
                    continue
                n += 1
                if not holds(q, s):
                    fails.append(i)
            diag = [f'{len(fails)} of {n} configs fail'] if fails else []
            for i in fails[:3]:
                s = results[i]
                want = model(reqs[i], reqs[i]['_spapr'])
                diag.append(f'asked  {fmt(reqs[i])}')
                diag.append('got    ' + ' '.join(
                    f'{k}={s[k]}' for k in PROJECT))
                diag.append('model  ' + ' '.join(
                    f'{k}={want[k]}' for k in PROJECT))
            if n == 0:
                diag = ['vacuous: no config to check']
            self.point(n > 0 and not fails, f'{name} [{n} configs]', diag)
        missing = []
        for name, arches, want in REACH:
            if arches and self.name not in arches:
                continue
            if not any(reqs[i]['RUST'] == 'y' and
                       all(results[i][k] == v for k, v in want.items())
                       for i in range(len(reqs))):
                missing.append(name)
        self.point(not missing, 'the setups a user may want can all be had',
                   [f'unreachable: {m}' for m in missing])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--tree', required=True)
    ap.add_argument('--out', required=True)
    ap.add_argument('--logdir', required=True)
    ap.add_argument('--arch', action='append', choices=list(ARCHES))
    args = ap.parse_args()
    t0 = time.time()
    arches = [Arch(a, args) for a in (args.arch or list(ARCHES))]
    threads = [threading.Thread(target=a.run) for a in arches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    points = [p for a in arches for p in a.tap]
    print('TAP version 13')
    print(f'1..{len(points)}')
    for a in arches:
        s = a.stats
        print(f'# {a.name}: {s.get("configs", 0)} configs resolved; '
              f'setup {s.get("setup_s", 0):.0f}s, kconfig-batch '
              f'{s.get("batch_s", 0):.0f}s, make olddefconfig samples '
              f'{s.get("olddefconfig_s", 0):.0f}s, total '
              f'{s.get("total_s", 0):.0f}s')
    failed = 0
    for n, (ok, name, diag) in enumerate(points, 1):
        print(f'{"ok" if ok else "not ok"} {n} - {name}')
        failed += not ok
        for d in diag:
            print(f'#   {d}')
    print(f'# {len(points) - failed} passed, {failed} failed, '
          f'{time.time() - t0:.0f}s')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
