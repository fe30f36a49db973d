#!/usr/bin/env python3
"""Tests of scripts/module-cycles.py on small made-up crates: each rule, and that a circle is
reported (exit 1) and a clean tree is not (exit 0). Run: python3 scripts/test_module_cycles.py
"""

import os
import subprocess
import sys
import tempfile
import unittest

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "module-cycles.py")


def run(files):
    """Writes `files` (path -> text) into a fresh src dir and runs the checker on it."""
    with tempfile.TemporaryDirectory() as d:
        for path, text in files.items():
            full = os.path.join(d, path)
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "w", encoding="utf-8") as f:
                f.write(text)
        p = subprocess.run([sys.executable, CHECKER, d], capture_output=True, text=True)
        return p.returncode, p.stdout


class ModuleCycles(unittest.TestCase):
    def test_two_files_using_each_other_are_a_circle(self):
        code, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("circle 1: 2 files: a.rs, b.rs", out)
        self.assertIn("a.rs:1: use crate::b::B;", out)

    def test_one_way_use_is_no_circle(self):
        code, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b::B;\n",
            "b.rs": "pub struct B;\n",
        })
        self.assertEqual(code, 0, out)

    def test_declaring_a_child_and_reexporting_it_is_no_edge(self):
        code, out = run({
            "lib.rs": "mod t;\npub use t::T;\npub const LIMIT: usize = 4;\n",
            "t/mod.rs": "mod leaf;\npub(crate) use leaf::T;\npub(crate) const N: u32 = 1;\n",
            "t/leaf.rs": "use super::N;\nuse crate::LIMIT;\npub struct T;\n",
        })
        self.assertEqual(code, 0, out)

    def test_a_parent_calling_its_child_that_uses_it_is_a_circle(self):
        code, out = run({
            "lib.rs": "mod t;\n",
            "t/mod.rs": "mod leaf;\npub struct P;\nfn f() { leaf::g(); }\n",
            "t/leaf.rs": "use super::P;\npub fn g() {}\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("t/leaf.rs, t/mod.rs", out)

    def test_a_path_through_a_reexport_reaches_the_defining_file(self):
        # `crate::T` is re-exported from t/leaf.rs: the edge goes there, closing a circle
        # leaf -> other -> leaf.
        code, out = run({
            "lib.rs": "mod t;\nmod other;\npub use t::T;\n",
            "t/mod.rs": "mod leaf;\npub use leaf::T;\n",
            "t/leaf.rs": "pub struct T;\nfn f() { crate::other::g(); }\n",
            "other.rs": "pub fn g() -> crate::T { crate::T }\n",
        })
        self.assertEqual(code, 1, out)
        self.assertIn("other.rs -> t/leaf.rs", out)

    def test_comments_strings_and_naming_a_module_alone_are_no_edges(self):
        code, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "use crate::b;\n// crate::b::B\n/* crate::b::B */\nconst S: &str = \"crate::b::B\";\n",
            "b.rs": "use crate::a::A;\n",
        })
        self.assertEqual(code, 0, out)

    def test_an_inline_test_module_using_super_stays_in_its_file(self):
        code, out = run({
            "lib.rs": "mod a;\nmod b;\n",
            "a.rs": "pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::f;\n}\n",
            "b.rs": "use crate::a::f;\n",
        })
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
