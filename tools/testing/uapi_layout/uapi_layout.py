#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Compare the ABI of our uAPI headers with upstream's; prints KTAP.

For each header (linux/iommufd.h, linux/vfio.h, and the selftest ABI
iommufd_test.h of drivers/iommu/iommufd, which includes linux/iommufd.h: each
side gets its own copy of that):
  * both copies are parsed (comments and directives stripped, then a small
    C declaration parser) into: struct/union definitions with every member
    (nested anonymous aggregates flattened, named ones kept as a.b paths),
    enums and enumerators, and #define macros (object-like integers,
    strings, function-like);
  * a probe C file is generated from each parse.  It holds one table of
    64-bit values: sizeof/alignof of every aggregate and named enum,
    offsetof/sizeof/alignof/integer-type of every member, the value and type
    of every enumerator and integer macro (ioctl numbers included), and the
    value of every function-like macro for a few sample arguments; string
    macros go into a second, NUL separated table;
  * the probe is built against a temp dir holding only that header (as
    linux/<name>.h, or iommufd_test.h with the same side's linux/iommufd.h;
    system /usr/include supplies linux/types.h etc.):
    natively with gcc and run (it prints its table), and for the cross
    targets with clang (the tables are pulled out of the object file, so no
    target libc is needed; i386/arm show __u64 vs __aligned_u64 mistakes);
  * upstream's and our outputs are diffed, grouped into test points.

Bitfields: offsetof/sizeof do not apply, so a bitfield member is compared by
its declaration text and the enclosing struct's size/alignment only (a note is
printed if any exist).

Usage: uapi_layout.py UPSTREAM_TREE OUR_UAPI_DIR OUR_IOMMUFD_DIR  (see run.sh)
Environment: UAPI_LAYOUT_TARGETS  space separated clang triples
             (default "i386-linux-gnu armv7a-linux-gnueabihf aarch64-linux-gnu");
             UAPI_LAYOUT_KEEP  directory to keep generated files and outputs in.
"""

import concurrent.futures
import difflib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile

SPDX = "/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */"
SPDX_KERNEL = "/* SPDX-License-Identifier: GPL-2.0 */"


class Header:
    """One header to compare: its name in the output, where the probe includes
    it from (inc, relative to the probe's include dir), both copies, the SPDX
    line ours must start with, and the headers it includes that must come
    from the same side (deps: [(inc, upstream path, our path)])."""

    def __init__(self, name, inc, up_path, our_path, spdx=SPDX, deps=()):
        self.name, self.inc = name, inc
        self.up_path, self.our_path = up_path, our_path
        self.spdx, self.deps = spdx, list(deps)


def headers(tree, uapi_dir, iommufd_dir):
    def uapi(h):
        return (os.path.join(tree, "include/uapi/linux", h), os.path.join(uapi_dir, "linux", h))
    out = [Header(h, "linux/" + h, *uapi(h)) for h in ("iommufd.h", "vfio.h")]
    out.append(Header("iommufd_test.h", "iommufd_test.h",
                      os.path.join(tree, "drivers/iommu/iommufd/iommufd_test.h"),
                      os.path.join(iommufd_dir, "iommufd_test.h"), SPDX_KERNEL,
                      [("linux/iommufd.h",) + uapi("iommufd.h")]))
    return out


def install(hdr, side, incdir):
    """Lays hdr (and its deps) of side ("upstream" or "ours") into incdir."""
    for inc, up_path, our_path in [(hdr.inc, hdr.up_path, hdr.our_path)] + hdr.deps:
        dest = os.path.join(incdir, inc)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy(up_path if side == "upstream" else our_path, dest)
DEFAULT_TARGETS = "i386-linux-gnu armv7a-linux-gnueabihf aarch64-linux-gnu"
SAMPLE_ARGS = [0, 1, 2, 3, 4, 5, 6, 7, 0xff, 0xffffffff]
BOM = 0x0102030405060708

# Forced into every compile, on both sides: things the kernel's own
# headers_install / newer linux/stddef.h provide that the system headers may
# lack.
COMPAT_H = """\
#ifndef __user
#define __user
#endif
#ifndef __counted_by
#define __counted_by(m)
#endif
"""

INTCLASS = """\
#define UAPI_T(x) _Generic((x), _Bool: 1, char: 2, signed char: 3, \\
	unsigned char: 4, short: 5, unsigned short: 6, int: 7, \\
	unsigned int: 8, long: 9, unsigned long: 10, long long: 11, \\
	unsigned long long: 12, default: 0)
"""

# ---------------------------------------------------------------- parsing

TOKEN_RE = re.compile(r"""
    "(?:\\.|[^"\\])*"          |
    '(?:\\.|[^'\\])*'          |
    [A-Za-z_]\w*               |
    \.?\d(?:[eEpP][+-]|[\w.])* |
    <<=|>>=|\.\.\.|->|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&|^~!<>=?:;,.(){}\[\]#]
""", re.X)

COMMENT_RE = re.compile(r"""("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*')|/\*.*?\*/|//[^\n]*""", re.S)


class ParseError(Exception):
    pass


def tokenize(text):
    toks = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise ParseError("cannot tokenize at %r" % text[pos:pos + 30])
        toks.append(m.group(0))
        pos = m.end()
    return toks


def is_ident(t):
    return re.match(r"[A-Za-z_]\w*$", t) is not None


class Model:
    """What one header defines."""

    def __init__(self):
        self.aggs = []        # (kind, tag, decl_lines, fields)
        self.enums = []       # (tag or None, [enumerator names])
        self.macros = []      # (name, params or None, body)
        self.typedefs = []
        self.first_line = ""
        self.guard = None
        self.conditionals = []

    def names(self):
        out = set()
        for kind, tag, _, _ in self.aggs:
            out.add("%s %s" % (kind, tag))
        for tag, items in self.enums:
            if tag:
                out.add("enum %s" % tag)
            out.update("enumerator %s" % e for e in items)
        for name, params, _ in self.macros:
            out.add("macro %s%s" % (name, "()" if params is not None else ""))
        out.update("typedef %s" % t for t in self.typedefs)
        return out


def strip_comments(text):
    return COMMENT_RE.sub(lambda m: m.group(1) if m.group(1) else " ", text)


def split_depth0(toks, sep):
    """Split a token list on sep at bracket depth 0."""
    out, cur, depth = [], [], 0
    for t in toks:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == sep and depth == 0:
            out.append(cur)
            cur = []
        else:
            cur.append(t)
    if cur:
        out.append(cur)
    return out


def match_close(toks, i):
    """Index of the bracket closing toks[i]."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    op, cl, depth = toks[i], pairs[toks[i]], 0
    for j in range(i, len(toks)):
        if toks[j] == op:
            depth += 1
        elif toks[j] == cl:
            depth -= 1
            if depth == 0:
                return j
    raise ParseError("unbalanced %s" % op)


def strip_attr_calls(toks):
    """Drop trailing __foo(..) annotations (like __counted_by(n)) and any
    __attribute__((..)) from a declarator."""
    toks = list(toks)
    changed = True
    while changed and toks:
        changed = False
        if toks[-1] == ")":
            depth = 0
            for j in range(len(toks) - 1, -1, -1):
                if toks[j] == ")":
                    depth += 1
                elif toks[j] == "(":
                    depth -= 1
                    if depth == 0:
                        break
            if j > 0 and is_ident(toks[j - 1]) and toks[j - 1].startswith("__"):
                del toks[j - 1:]
                changed = True
    return drop_gnu_attributes(toks)


def drop_gnu_attributes(toks):
    out, i = [], 0
    while i < len(toks):
        if toks[i] in ("__attribute__", "__attribute") and i + 1 < len(toks) and toks[i + 1] == "(":
            i = match_close(toks, i + 1) + 1
            continue
        out.append(toks[i])
        i += 1
    return out


def parse_declarator(toks):
    """-> (name, dims, bitwidth) for e.g. ['*', 'data'], ['idr', '[', '6', ']']."""
    toks = strip_attr_calls(toks)
    bits = None
    parts = split_depth0(toks, ":")
    if len(parts) > 1:
        toks, bits = parts[0], " ".join(parts[1])
    dims = []
    while toks and toks[-1] == "]":
        depth = 0
        for j in range(len(toks) - 1, -1, -1):
            if toks[j] == "]":
                depth += 1
            elif toks[j] == "[":
                depth -= 1
                if depth == 0:
                    break
        dims.insert(0, " ".join(toks[j + 1:-1]))
        toks = toks[:j]
    idents = [t for t in toks if is_ident(t)]
    if not idents:
        return None, dims, bits
    return idents[-1], dims, bits


def parse_members(toks, prefix, lines, fields, indent):
    for member in split_depth0(toks, ";"):
        if not member:
            continue
        head = member[0]
        if head in ("struct", "union") and "{" in member:
            ob = member.index("{")
            cb = match_close(member, ob)
            rest = member[cb + 1:]
            decls = [d for d in split_depth0(rest, ",") if parse_declarator(d)[0]]
            lines.append(indent + " ".join(member[:ob + 1]))
            if decls:
                name, dims, bits = parse_declarator(decls[0])
                fields.append(dict(path=prefix + name, dims=dims, bits=bits))
                sub = prefix + name + "."
            else:
                sub = prefix
            parse_members(member[ob + 1:cb], sub, lines, fields, indent + "  ")
            lines.append(indent + " ".join(member[cb:]))
            continue
        if head == "enum" and "{" in member:
            raise ParseError("enum defined inside an aggregate is not supported")
        lines.append(indent + " ".join(member))
        chunks = split_depth0(member, ",")
        for chunk in chunks:
            name, dims, bits = parse_declarator(chunk)
            if not name:
                raise ParseError("no member name in %r" % " ".join(member))
            fields.append(dict(path=prefix + name, dims=dims, bits=bits))


def parse_header(path):
    text = open(path, encoding="utf-8").read()
    m = Model()
    m.first_line = text.split("\n", 1)[0]
    text = strip_comments(text)
    text = re.sub(r"\\\n", "", text)
    code = []
    for line in text.split("\n"):
        s = line.strip()
        if not s.startswith("#"):
            code.append(line)
            continue
        d = re.match(r"#\s*(\w+)\s*(.*)$", s)
        if not d:
            continue
        kw, rest = d.groups()
        if kw == "define":
            dm = re.match(r"(\w+)(\([^)]*\))?\s*(.*)$", rest)
            name, params, body = dm.groups()
            if params is not None:
                params = [p.strip() for p in params[1:-1].split(",") if p.strip()]
            m.macros.append((name, params, body.strip()))
        elif kw == "ifndef" and m.guard is None:
            m.guard = rest.strip()
        elif kw in ("if", "ifdef", "ifndef", "elif", "else"):
            m.conditionals.append(s)
    toks = tokenize("\n".join(code))
    for decl in split_depth0(toks, ";"):
        if not decl:
            continue
        if decl[0] in ("struct", "union") and "{" in decl:
            ob = decl.index("{")
            cb = match_close(decl, ob)
            tagtoks = [t for t in drop_gnu_attributes(decl[1:ob]) if is_ident(t)]
            if not tagtoks:
                raise ParseError("anonymous top-level %s" % decl[0])
            lines = [" ".join(decl[:ob + 1])]
            fields = []
            parse_members(decl[ob + 1:cb], "", lines, fields, "  ")
            lines.append(" ".join(decl[cb:]))
            m.aggs.append((decl[0], tagtoks[-1], lines, fields))
        elif decl[0] == "enum" and "{" in decl:
            ob = decl.index("{")
            cb = match_close(decl, ob)
            tagtoks = [t for t in decl[1:ob] if is_ident(t)]
            items = [e[0] for e in split_depth0(decl[ob + 1:cb], ",") if e]
            m.enums.append((tagtoks[-1] if tagtoks else None, items))
        elif decl[0] == "typedef":
            name, _, _ = parse_declarator(decl[1:])
            m.typedefs.append(name)
        else:
            raise ParseError("unhandled top-level declaration: %s" % " ".join(decl))
    return m


# ---------------------------------------------------------------- probe

def c_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gen_probe(model, inc):
    """-> (C source, keys); keys[i] is (group, key) of value i+1."""
    keys, exprs = [], []

    def add(group, key, expr):
        keys.append((group, key))
        exprs.append(expr)

    for kind, tag, _, fields in model.aggs:
        agg = "%s %s" % (kind, tag)
        add(agg, "sizeof", "sizeof(%s)" % agg)
        add(agg, "alignof", "__alignof__(%s)" % agg)
        for f in fields:
            p = f["path"]
            mem = "((%s *)0)->%s" % (agg, p)
            if f["bits"] is not None:
                continue
            flex = bool(f["dims"]) and f["dims"][0] == ""
            elem = mem + "[0]" * len(f["dims"])
            add(agg, ".%s offsetof" % p, "__builtin_offsetof(%s, %s)" % (agg, p))
            if flex:
                add(agg, ".%s flex-array element sizeof" % p, "sizeof(%s[0])" % mem)
                add(agg, ".%s alignof" % p, "__alignof__(%s[0])" % mem)
            else:
                add(agg, ".%s sizeof" % p, "sizeof(%s)" % mem)
                add(agg, ".%s alignof" % p, "__alignof__(%s)" % mem)
            add(agg, ".%s scalar type" % p, "UAPI_T(%s)" % elem)
    for tag, items in model.enums:
        if tag:
            add("enums", "enum %s sizeof" % tag, "sizeof(enum %s)" % tag)
            add("enums", "enum %s alignof" % tag, "__alignof__(enum %s)" % tag)
        for e in items:
            add("enums", "%s value" % e, "(unsigned long long)(%s)" % e)
            add("enums", "%s type" % e, "UAPI_T(%s)" % e)
    strings = []
    for name, params, body in model.macros:
        if params is None:
            if body == "":
                continue            # presence only, compared by name
            if body.startswith('"'):
                strings.append(name)
                continue
            add("integer macros", "%s value" % name, "(unsigned long long)(%s)" % name)
            add("integer macros", "%s type" % name, "UAPI_T(%s)" % name)
        else:
            for a in SAMPLE_ARGS:
                args = ", ".join(["%#x" % a] * len(params))
                add("function-like macros", "%s(%s)" % (name, args),
                    "(unsigned long long)(%s(%s))" % (name, args))

    out = ["/* generated by tools/testing/uapi_layout/uapi_layout.py */",
           "#include <%s>" % inc, INTCLASS,
           "const unsigned long long uapi_vals[] "
           "__attribute__((section(\".uapi_vals\"), used)) = {",
           "\t%#xULL," % BOM]
    out += ["\t%s," % e for e in exprs]
    out += ["};", ""]
    # NUL separated, with a leading NUL so an empty table is still valid
    out.append("const char uapi_strs[] __attribute__((section(\".uapi_strs\"), used)) =")
    out.append('\t""' + "".join(' %s "\\0"' % s for s in strings) + ";")
    out += ["", "#ifdef UAPI_PROBE_MAIN", "#include <stdio.h>",
            "static const char *const uapi_keys[] = {"]
    out += ["\t%s," % c_str("%s|%s" % k) for k in keys]
    out += ["\t0", "};", "static const char *const uapi_str_names[] = {"]
    out += ["\t%s," % c_str(s) for s in strings]
    out += ["\t0", "};",
            "int main(void)", "{",
            "\tconst char *s = uapi_strs;",
            "\tunsigned i;",
            "\tfor (i = 0; uapi_keys[i]; i++)",
            "\t\tprintf(\"%s|%llu\\n\", uapi_keys[i], uapi_vals[i + 1]);",
            "\tfor (i = 0; uapi_str_names[i]; i++, s += __builtin_strlen(s) + 1)",
            "\t\tprintf(\"string macros|%s|%s\\n\", uapi_str_names[i], s);",
            "\treturn 0;", "}", "#endif", ""]
    return "\n".join(out), keys, strings


# ---------------------------------------------------------------- building

def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, **kw)


class Builder:
    def __init__(self, work):
        self.work = work
        self.compat = os.path.join(work, "compat.h")
        with open(self.compat, "w") as f:
            f.write(COMPAT_H)
        # cross targets: asm/ headers redirected to the generic ones
        self.asm = os.path.join(work, "asm-generic-shim")
        os.makedirs(os.path.join(self.asm, "asm"))
        for h in os.listdir("/usr/include/asm-generic"):
            with open(os.path.join(self.asm, "asm", h), "w") as f:
                f.write("#include <asm-generic/%s>\n" % h)
        self.clang = shutil.which("clang-19") or shutil.which("clang")
        self.objcopy = shutil.which("llvm-objcopy-19") or shutil.which("llvm-objcopy")

    def native(self, incdir, src, outdir):
        exe = os.path.join(outdir, "probe")
        r = run(["gcc", "-std=gnu11", "-O0", "-w", "-include", self.compat,
                 "-I", incdir, "-DUAPI_PROBE_MAIN", src, "-o", exe])
        if r.returncode:
            return None, r.stdout
        r = run([exe])
        if r.returncode:
            return None, "probe exited %d\n%s" % (r.returncode, r.stdout)
        return r.stdout.splitlines(), ""

    def cross(self, target, incdir, src, outdir, keys, strings):
        obj = os.path.join(outdir, "probe.o")
        r = run([self.clang, "--target=" + target, "-std=gnu11", "-w", "-c",
                 "-include", self.compat, "-I", incdir, "-I", self.asm, src, "-o", obj])
        if r.returncode:
            return None, r.stdout
        blobs = {}
        for sec in ("uapi_vals", "uapi_strs"):
            out = os.path.join(outdir, sec + ".bin")
            r = run([self.objcopy, "-O", "binary", "--only-section=." + sec, obj, out])
            if r.returncode:
                return None, r.stdout
            blobs[sec] = open(out, "rb").read()
        v = blobs["uapi_vals"]
        order = "little" if int.from_bytes(v[:8], "little") == BOM else "big"
        if int.from_bytes(v[:8], order) != BOM or len(v) != 8 * (len(keys) + 1):
            return None, "value table of %s is malformed" % obj
        vals = [int.from_bytes(v[i:i + 8], order) for i in range(8, len(v), 8)]
        lines = ["%s|%s|%d" % (g, k, x) for (g, k), x in zip(keys, vals)]
        strs = blobs["uapi_strs"].decode().split("\0")
        lines += ["string macros|%s|%s" % (n, s) for n, s in zip(strings, strs)]
        return lines, ""


# ---------------------------------------------------------------- compare

class Tap:
    def __init__(self):
        self.points = []
        self.notes = []

    def add(self, ok, desc, diag=()):
        self.points.append((ok, desc, list(diag)))

    def emit(self):
        print("TAP version 13")
        print("1..%d" % len(self.points))
        for n in self.notes:
            print("# " + n)
        for i, (ok, desc, diag) in enumerate(self.points, 1):
            for d in diag[:60]:
                print("# " + d)
            if len(diag) > 60:
                print("# ... %d more lines" % (len(diag) - 60))
            print("%s %d - %s" % ("ok" if ok else "not ok", i, desc))
        fails = sum(1 for p in self.points if not p[0])
        print("# totals: pass:%d fail:%d" % (len(self.points) - fails, fails))
        return fails


def group_lines(lines):
    groups = {}
    for ln in lines:
        g, rest = ln.split("|", 1)
        groups.setdefault(g, []).append(rest)
    return groups


def diff(a, b, label):
    return [l.rstrip("\n") for l in difflib.unified_diff(
        a, b, "upstream " + label, "ours " + label, n=1, lineterm="")]


def check_header(tap, builder, hdr, targets, work):
    hn, up_path, our_path = hdr.name, hdr.up_path, hdr.our_path
    try:
        up = parse_header(up_path)
    except (OSError, ParseError) as e:
        tap.add(False, "%s: parse upstream header" % hn, [str(e)])
        return
    try:
        ours = parse_header(our_path)
    except (OSError, ParseError) as e:
        tap.add(False, "%s: parse our header" % hn, [str(e)])
        return
    for m, who in ((up, "upstream"), (ours, "our")):
        if m.conditionals:
            tap.notes.append("%s: %s header has conditionals, parsed as if all "
                             "were taken: %s" % (hn, who, "; ".join(m.conditionals)))

    # SPDX line and include guard
    diag = []
    if ours.first_line != hdr.spdx:
        diag.append("first line is %r" % ours.first_line)
    if ours.guard != up.guard:
        diag.append("include guard %r, upstream %r" % (ours.guard, up.guard))
    tap.add(not diag, "%s: SPDX line and include guard %s" % (hn, up.guard), diag)

    # our header alone, with warnings as errors, included twice
    inc = os.path.join(work, hn.replace(".", "_"), "syntax")
    install(hdr, "ours", inc)
    src = os.path.join(inc, "syntax.c")
    with open(src, "w") as f:
        f.write("#include <%s>\n#include <%s>\n" % (hdr.inc, hdr.inc))
    r = run(["gcc", "-std=gnu11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
             "-include", builder.compat, "-I", inc, src])
    tap.add(r.returncode == 0, "%s: ours compiles alone (gcc -fsyntax-only -Wall -Wextra -Werror)" % hn,
            r.stdout.splitlines())

    # names
    un, on = up.names(), ours.names()
    diag = ["missing in ours: " + n for n in sorted(un - on)]
    diag += ["extra in ours:   " + n for n in sorted(on - un)]
    tap.add(not diag, "%s: same names (%d structs/unions, %d enums, %d enumerators, %d macros)" % (
        hn, len(up.aggs), sum(1 for t, _ in up.enums if t),
        sum(len(i) for _, i in up.enums), len(up.macros)), diag)
    bitfields = [(t, f["path"]) for _, t, _, fs in up.aggs for f in fs if f["bits"] is not None]
    if bitfields:
        tap.notes.append("%s: %d bitfield(s) compared by declaration text and enclosing "
                         "size/alignment only: %s" % (hn, len(bitfields),
                                                      ", ".join("%s.%s" % b for b in bitfields)))

    # build and run the probes: native + cross targets, upstream + ours
    jobs = {}
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 4) as ex:
        for side, model in (("upstream", up), ("ours", ours)):
            base = os.path.join(work, hn.replace(".", "_"), side)
            inc = os.path.join(base, "include")
            install(hdr, side, inc)
            csrc, keys, strings = gen_probe(model, hdr.inc)
            src = os.path.join(base, "probe.c")
            with open(src, "w") as f:
                f.write(csrc)
            for tgt in ["native"] + targets:
                od = os.path.join(base, tgt)
                os.makedirs(od)
                if tgt == "native":
                    jobs[ex.submit(builder.native, inc, src, od)] = (side, tgt)
                else:
                    jobs[ex.submit(builder.cross, tgt, inc, src, od, keys, strings)] = (side, tgt)
        for fut in concurrent.futures.as_completed(jobs):
            results[jobs[fut]] = fut.result()

    diag = []
    for tgt in ["native"] + targets:
        for side in ("upstream", "ours"):
            lines, err = results[(side, tgt)]
            if lines is None:
                diag.append("%s probe for %s failed:" % (side, tgt))
                diag += ["  " + l for l in err.splitlines()]
            else:
                with open(os.path.join(work, hn.replace(".", "_"), side, tgt, "output.txt"), "w") as f:
                    f.write("\n".join(lines) + "\n")
    tap.add(not diag, "%s: layout probe builds and runs (native %s gcc%s)" % (
        hn, platform.machine(), "".join(", " + t for t in targets)), diag)

    groups = {}
    for (side, tgt), (lines, _) in results.items():
        for g, ls in group_lines(lines or []).items():
            groups.setdefault(g, {}).setdefault(tgt, {})[side] = ls

    def compare(group, desc, decl=None):
        d = []
        if decl is not None:
            d += diff(decl[0], decl[1], "declaration")
        for tgt in ["native"] + targets:
            sides = groups.get(group, {}).get(tgt, {})
            d += diff(sides.get("upstream", []), sides.get("ours", []), "%s %s" % (tgt, group))
        tap.add(not d, "%s: %s" % (hn, desc), d)

    our_aggs = {(k, t): (lines, fs) for k, t, lines, fs in ours.aggs}
    for kind, tag, lines, fields in up.aggs:
        agg = "%s %s" % (kind, tag)
        mine = our_aggs.get((kind, tag))
        if mine is None:
            tap.add(False, "%s: %s layout" % (hn, agg), ["missing in ours"])
            continue
        nflex = sum(1 for f in fields if f["dims"] and f["dims"][0] == "")
        compare(agg, "%s layout (%d members%s)" % (agg, len(fields),
                                                  ", flexible array" if nflex else ""),
                (lines, mine[0]))
    up_tags = {(k, t) for k, t, _, _ in up.aggs}
    for kind, tag, _, _ in ours.aggs:
        if (kind, tag) not in up_tags:
            tap.add(False, "%s: %s %s layout" % (hn, kind, tag), ["not in upstream"])

    n_enum = sum(len(i) for _, i in up.enums)
    compare("enums", "enum constants and enum sizes (%d enumerators)" % n_enum)
    kinds = {"int": 0, "str": 0, "fn": 0}
    for _, params, body in up.macros:
        if params is not None:
            kinds["fn"] += 1
        elif body.startswith('"'):
            kinds["str"] += 1
        elif body:
            kinds["int"] += 1
    compare("integer macros", "integer macro values and types, ioctl numbers included (%d)" % kinds["int"])
    if kinds["str"] or any(b.startswith('"') for _, p, b in ours.macros if p is None):
        compare("string macros", "string macros (%d)" % kinds["str"])
    if kinds["fn"] or any(p is not None for _, p, _ in ours.macros):
        compare("function-like macros", "function-like macro results on sample arguments (%d)" % kinds["fn"])


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: %s UPSTREAM_TREE OUR_UAPI_DIR OUR_IOMMUFD_DIR\n" % sys.argv[0])
        return 2
    tree, ours_dir, iommufd_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    keep = os.environ.get("UAPI_LAYOUT_KEEP")
    work = tempfile.mkdtemp(prefix="uapi_layout.")
    tap = Tap()
    try:
        builder = Builder(work)
        targets = os.environ.get("UAPI_LAYOUT_TARGETS", DEFAULT_TARGETS).split()
        if targets and not (builder.clang and builder.objcopy):
            tap.notes.append("clang/llvm-objcopy not found: cross targets skipped")
            targets = []
        for h in headers(tree, ours_dir, iommufd_dir):
            check_header(tap, builder, h, targets, work)
        fails = tap.emit()
    finally:
        if keep:
            shutil.rmtree(keep, ignore_errors=True)
            shutil.copytree(work, keep)
        shutil.rmtree(work, ignore_errors=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
