"""The suite's own rules, read from its source: every test asserts something (itself or
through a helper that does), no comparison hides in an assertion's message (where it is
never checked), and no test skips itself half-way (a skip is a marker, decided up front)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

TESTS = Path(__file__).resolve().parent
Function = ast.FunctionDef | ast.AsyncFunctionDef


def _called(node: ast.AST) -> Iterator[str]:
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            yield f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def _checks_directly(fn: Function) -> bool:
    """An assert, pytest.raises / warns / fail, or an assert_* / check_grad call."""
    if any(isinstance(n, ast.Assert) for n in ast.walk(fn)):
        return True
    return any(
        name in ("raises", "warns", "fail") or "assert" in name or name == "check_grad"
        for name in _called(fn)
    )


def _functions() -> list[tuple[Path, Function]]:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [(path, n) for n in ast.walk(tree) if isinstance(n, Function)]
    return found


def _asserting(functions: list[tuple[Path, Function]]) -> set[str]:
    """Names of the suite's functions that assert, directly or through one that does."""
    names: set[str] = set()
    grew = True
    while grew:
        grew = False
        for _, fn in functions:
            if fn.name not in names and (
                _checks_directly(fn) or any(c in names for c in _called(fn))
            ):
                names.add(fn.name)
                grew = True
    return names


def _problems(path: Path, fn: Function, asserting: set[str]) -> Iterator[str]:
    where = f"{path.relative_to(TESTS.parent)}:{fn.lineno} {fn.name}"
    if fn.name not in asserting:
        yield f"{where}: asserts nothing"
    for n in ast.walk(fn):
        message = n.msg if isinstance(n, ast.Assert) else None
        if message is not None and any(isinstance(m, ast.Compare) for m in ast.walk(message)):
            yield f"{where}: line {n.lineno} compares inside an assertion message"
        if (
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("importorskip", "skip")
            and getattr(n.func.value, "id", "") == "pytest"
        ):
            yield f"{where}: line {n.lineno} skips inside the test"


def test_every_test_asserts_and_neither_hides_a_check_nor_skips_half_way():
    functions = _functions()
    tests = [(p, fn) for p, fn in functions if fn.name.startswith("test_")]
    assert len(tests) > 400  # the walk found the suite
    asserting = _asserting(functions)
    problems = [line for p, fn in tests for line in _problems(p, fn, asserting)]
    assert problems == []


def test_the_rules_catch_each_kind_of_problem(tmp_path):
    source = (
        "import pytest\n"
        "def test_quiet():\n    x = 1\n"
        "def test_hidden():\n    assert True, 1 == 2\n"
        "def test_skips():\n    pytest.importorskip('onnx')\n    assert 1\n"
    )
    fns = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)]
    asserting = _asserting([(tmp_path, fn) for fn in fns])
    found = [line for fn in fns for line in _problems(TESTS / "x.py", fn, asserting)]
    assert [line.split(": ", 1)[1] for line in found] == [
        "asserts nothing",
        "line 5 compares inside an assertion message",
        "line 7 skips inside the test",
    ]
