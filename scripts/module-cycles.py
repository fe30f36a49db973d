#!/usr/bin/env python3
"""Import circles between the modules of one Rust crate, at file granularity.

Usage: python3 scripts/module-cycles.py SRC_DIR   (for example engine/src)

Each .rs file reached from the crate roots (lib.rs, main.rs) through `mod name;` lines is a
node. An edge A -> B says that file A names an item defined (or re-exported from) file B:
through a `use crate::...`, `use super::...`, `use self::...` or relative `use child::...`
line, or a qualified path in code (`crate::x::y`, `super::y`, `child::y`, or through a name a
`use` line imported). Comments and string literals are ignored.

Rules, so that the answer matches what a reader means by "module A depends on module B":
- A parent declaring `mod child;` is not an edge; a child using its parent's items is one.
- A `pub use child::Item` (any `pub(...)`) in a module re-exports an item of its own subtree:
  not an edge. A path reaching the re-exported name is followed to the file that defines it.
- Naming a module alone (`use crate::wal;`) is not an edge; using an item through it is.

The strongly connected components of this graph (Tarjan) with more than one file are the
circles. Each is printed with the lines that tie it; the exit code is 1 when there is any,
0 otherwise, 2 on bad usage. Python 3 standard library only.
"""

import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
KEYWORDS_ROOT = ("crate", "super", "self")


def strip_code(text):
    """Blanks comments, string and char literals (newlines kept, so line numbers hold)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(blank(text[i:j]))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 64]) and not is_ident_char(text, i - 1):
            m = re.match(r'(b?r)(#*)"', text[i:])
            end = text.find('"' + m.group(2), i + len(m.group(0)))
            j = n if end < 0 else end + 1 + len(m.group(2))
            out.append(blank(text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and not is_ident_char(text, i - 1)):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(blank(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') or a lifetime ('a): only literals close.
            m = re.match(r"'(\\(u\{[0-9A-Fa-f]*\}|x[0-9A-Fa-f]{2}|.)|[^\\'])'", text[i:i + 16])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def blank(s):
    return "".join("\n" if ch == "\n" else " " for ch in s)


def is_ident_char(text, i):
    return i >= 0 and (text[i].isalnum() or text[i] == "_")


class Module:
    def __init__(self, path, file, parent):
        self.path = path  # tuple of names; () is the crate root
        self.file = file  # the file holding it (inline modules share their file)
        self.parent = parent
        self.children = {}  # name -> Module
        self.reexports = {}  # name -> absolute path tuple, from `pub use`
        self.globs = []  # absolute module paths from `pub use x::*`
        self.aliases = {}  # name -> absolute path tuple, from every `use`


def parse_use_tree(s):
    """`a::b::{c, d::e as f, self, *}` -> [(segments, alias)]; alias None for `*`."""
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"\s*(::|\{|\}|,)\s*", r"\1", s).strip()
    out = []

    def walk(prefix, text):
        parts, depth, cur = [], 0, ""
        for ch in text:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        for part in parts:
            brace = part.find("{")
            if brace >= 0 and part.endswith("}"):
                head = [x for x in part[:brace].split("::") if x]
                walk(prefix + head, part[brace + 1:-1])
                continue
            body, _, alias = part.partition(" as ")
            segs = [x for x in body.strip().split("::") if x]
            alias = alias.strip() or None
            if not segs:
                continue
            if segs[-1] == "self":
                full = prefix + segs[:-1]
                out.append((full, alias or (full[-1] if full else None)))
            elif segs[-1] == "*":
                out.append((prefix + segs, None))
            else:
                out.append((prefix + segs, alias or segs[-1]))

    walk([], s)
    return out


USE_RE = re.compile(r"(?:^|(?<=[;{}\]\s]))(pub(?:\s*\([^)]*\))?\s+)?use\s+([^;]*);", re.S)
MOD_DECL_RE = re.compile(r"(?:^|(?<=[;{}\]\s]))(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;")
MOD_INLINE_RE = re.compile(r"(?:^|(?<=[;{}\]\s]))(?:pub(?:\s*\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{")
PATH_RE = re.compile(r"(?<![A-Za-z0-9_:])(" + IDENT + r")((?:\s*::\s*(?:" + IDENT + r"))+)")


def line_of(text, pos):
    return text.count("\n", 0, pos) + 1


class Crate:
    def __init__(self, src):
        self.src = src
        self.modules = {}  # path tuple -> Module
        self.texts = {}  # file -> stripped text
        self.raw = {}  # file -> raw lines
        self.inline_spans = {}  # file -> [(start, end, Module)]
        self.file_module = {}  # file -> Module

    def load(self, file):
        with open(file, encoding="utf-8") as f:
            raw = f.read()
        self.raw[file] = raw.splitlines()
        self.texts[file] = strip_code(raw)
        return self.texts[file]

    def add_file_module(self, path, file, parent):
        mod = Module(path, file, parent)
        self.modules[path] = mod
        self.file_module[file] = mod
        text = self.load(file)
        self.scan_inline(mod, file, text)
        base_dir = os.path.dirname(file)
        stem = os.path.splitext(os.path.basename(file))[0]
        # `foo.rs` keeps its children in `foo/`; `mod.rs`, `lib.rs`, `main.rs` beside them.
        child_dir = base_dir if stem in ("mod", "lib", "main") else os.path.join(base_dir, stem)
        for m in MOD_DECL_RE.finditer(text):
            name = m.group(1)
            for cand in (os.path.join(child_dir, name + ".rs"), os.path.join(child_dir, name, "mod.rs")):
                if os.path.exists(cand):
                    child = self.add_file_module(path + (name,), cand, mod)
                    mod.children[name] = child
                    break
        return mod

    def scan_inline(self, mod, file, text):
        spans = self.inline_spans.setdefault(file, [])
        for m in MOD_INLINE_RE.finditer(text):
            start = m.end() - 1
            depth, j = 0, start
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            # Nested inline modules: the innermost enclosing span is the parent.
            parent = self.scope_at(file, start) or mod
            child = Module(parent.path + (m.group(1),), file, parent)
            parent.children[m.group(1)] = child
            self.modules[child.path] = child
            spans.append((start, j, child))

    def scope_at(self, file, pos):
        best = None
        for start, end, m in self.inline_spans.get(file, []):
            if start <= pos <= end and (best is None or start >= best[0]):
                best = (start, m)
        return best[1] if best else None

    def absolute(self, scope, segs):
        """A path as written in `scope` -> an absolute path tuple, or None (external)."""
        if not segs:
            return None
        head, rest = segs[0], segs[1:]
        if head == "crate":
            return tuple(rest)
        if head == "self":
            return scope.path + tuple(rest)
        if head == "super":
            cur = scope
            while segs and segs[0] == "super":
                if cur.parent is None:
                    return None
                cur = cur.parent
                segs = segs[1:]
            if segs and segs[0] == "self":
                segs = segs[1:]
            return cur.path + tuple(segs)
        if head in scope.children:
            return scope.path + tuple(segs)
        if head in scope.aliases and head not in ("Self",):
            return scope.aliases[head] + tuple(rest)
        return None

    def target_file(self, abspath, seen=None):
        """The file defining what `abspath` names; None for a module alone or unknown."""
        seen = seen or set()
        if abspath in seen:
            return None
        seen.add(abspath)
        mod = self.modules.get(())
        i = 0
        while i < len(abspath) and abspath[i] in mod.children:
            mod = mod.children[abspath[i]]
            i += 1
        rest = abspath[i:]
        if not rest:
            return None
        name = rest[0]
        if name == "*":
            return mod.file
        if name in mod.reexports:
            follow = self.target_file(mod.reexports[name] + tuple(rest[1:]), seen)
            if follow is not None:
                return follow
        for glob in mod.globs:
            follow = self.target_file(glob + tuple(rest), seen)
            if follow is not None:
                return follow
        return mod.file

    def in_subtree(self, mod, abspath):
        return abspath[: len(mod.path)] == mod.path and len(abspath) > len(mod.path)


def scan(src):
    crate = Crate(src)
    roots = [f for f in ("lib.rs", "main.rs") if os.path.exists(os.path.join(src, f))]
    if not roots:
        print(f"{src}: no lib.rs or main.rs", file=sys.stderr)
        sys.exit(2)
    edges = {}  # (a, b) -> [(line, text)]
    for root in roots:
        crate.modules = {}
        crate.inline_spans = {}
        crate.add_file_module((), os.path.join(src, root), None)
        uses = collect_uses(crate)
        for file in {m.file for m in crate.modules.values()}:
            for a, b, line in file_edges(crate, file, uses):
                if a != b:
                    edges.setdefault((a, b), []).append(line)
    return edges


def collect_uses(crate):
    """Every `use` item per file, after registering aliases and re-exports (two passes, so
    a path may go through a re-export declared in a file read later)."""
    uses = {}
    for file in {m.file for m in crate.modules.values()}:
        text = crate.texts[file]
        for m in USE_RE.finditer(text):
            scope = crate.scope_at(file, m.start()) or crate.file_module[file]
            for segs, alias in parse_use_tree(m.group(2)):
                abspath = crate.absolute(scope, segs[:-1] if segs[-1] == "*" else segs)
                if abspath is None:
                    continue
                public = m.group(1) is not None
                reexport = public and crate.in_subtree(scope, abspath)
                if segs[-1] == "*":
                    if public:
                        scope.globs.append(abspath)
                    uses.setdefault(file, []).append((m.start(), scope, abspath + ("*",), reexport))
                    continue
                if alias:
                    scope.aliases[alias] = abspath
                    if public:
                        scope.reexports[alias] = abspath
                uses.setdefault(file, []).append((m.start(), scope, abspath, reexport))
    return uses


def file_edges(crate, file, uses):
    text = crate.texts[file]
    lines = crate.raw[file]
    use_spans = [(m.start(), m.end()) for m in USE_RE.finditer(text)]
    for pos, scope, abspath, reexport in uses.get(file, []):
        if reexport:
            continue
        target = crate.target_file(abspath)
        if target:
            n = line_of(text, pos)
            yield file, target, (n, lines[n - 1].strip())
    for m in PATH_RE.finditer(text):
        if any(s <= m.start() < e for s, e in use_spans):
            continue
        # A path that continues one already matched (`a::b` inside `x::a::b`) starts at `x`.
        scope = crate.scope_at(file, m.start()) or crate.file_module[file]
        segs = [m.group(1)] + [s for s in re.split(r"\s*::\s*", m.group(2)) if s]
        if segs[0] not in KEYWORDS_ROOT and segs[0] not in scope.children and segs[0] not in scope.aliases:
            continue
        abspath = crate.absolute(scope, segs)
        if abspath is None:
            continue
        target = crate.target_file(abspath)
        if target:
            n = line_of(text, m.start())
            yield file, target, (n, lines[n - 1].strip())


def tarjan(nodes, succ):
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        # Iterative, so deep module graphs cannot hit the recursion limit.
        work = [(v, iter(sorted(succ.get(v, ()))))]
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        while work:
            node, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(succ.get(w, ())))))
                    advanced = True
                    break
                if w in on:
                    low[node] = min(low[node], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: module-cycles.py SRC_DIR", file=sys.stderr)
        return 2
    src = argv[1]
    edges = scan(src)
    succ, nodes = {}, set()
    for a, b in edges:
        succ.setdefault(a, set()).add(b)
        nodes.update((a, b))
    circles = [c for c in tarjan(nodes, succ) if len(c) > 1]
    rel = lambda f: os.path.relpath(f, src)
    for k, comp in enumerate(sorted(circles, key=lambda c: (-len(c), c)), 1):
        members = set(comp)
        print(f"circle {k}: {len(comp)} files: {', '.join(rel(f) for f in comp)}")
        for (a, b), ties in sorted(edges.items()):
            if a in members and b in members:
                for n, line in sorted(set(ties))[:3]:
                    print(f"  {rel(a)} -> {rel(b)}   {rel(a)}:{n}: {line}")
                if len(set(ties)) > 3:
                    print(f"    ... and {len(set(ties)) - 3} more lines")
    files = len({f for f in nodes})
    print(f"{src}: {len(circles)} import circle(s) among {files} files with edges, {len(edges)} edges")
    return 1 if circles else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
