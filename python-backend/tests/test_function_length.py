"""No function of the sidecar is longer than a screen: each over ``MAX_LINES`` is split
into named steps (the Rust crates hold the same line through clippy's ``too_many_lines``).

ruff has no rule that counts a function's lines (its pylint rules count statements and
branches), so this walks the syntax tree. Lines are counted as clippy does: from the
``def`` to the last line of the body, blank lines, comments and the docstring left out.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

MAX_LINES = 80
BACKEND = Path(__file__).resolve().parents[1]


def _code_lines(source: str) -> set[int]:
    """The line numbers that hold code: not blank, not only a comment, not a docstring."""
    lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (
            tokenize.COMMENT,
            tokenize.NL,
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.DEDENT,
        ):
            continue
        lines.update(range(tok.start[0], tok.end[0] + 1))
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            doc = node.body[0] if node.body else None
            if (
                isinstance(doc, ast.Expr)
                and isinstance(doc.value, ast.Constant)
                and isinstance(doc.value.value, str)
            ):
                lines.difference_update(range(doc.lineno, doc.end_lineno + 1))
    return lines


def long_functions(source: str, name: str) -> list[str]:
    """Each function in ``source`` longer than ``MAX_LINES`` code lines, as ``name:line fn (n)``."""
    code = _code_lines(source)
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = len([line for line in code if node.lineno <= line <= node.end_lineno])
            if n > MAX_LINES:
                found.append(f"{name}:{node.lineno} {node.name} ({n} lines)")
    return found


def test_no_function_of_the_sidecar_is_over_80_lines() -> None:
    files = [BACKEND / "server.py", *sorted((BACKEND / "local_mlx_sidecar").glob("*.py"))]
    assert len(files) > 5, files
    too_long = [f for path in files for f in long_functions(path.read_text(), path.name)]
    assert not too_long, f"split these into named steps: {too_long}"


def test_the_count_leaves_out_blanks_comments_and_the_docstring() -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))
    fits = f'def f():\n    """Doc.\n\n    More doc.\n    """\n    # a comment\n\n{body}'
    assert long_functions(fits, "fits") == []
    assert long_functions(fits + "    x = 0\n", "over") == [f"over:1 f ({MAX_LINES + 1} lines)"]
