"""The project's own promises: CI runs README's test command, stubs match."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", text, flags=re.S)


def test_ci_runs_the_readme_test_command_verbatim():
    test_command = next(c for c in readme_commands() if "pytest" in c)
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command.strip() in [line.strip() for line in ci]


def test_readme_main_command_runs_the_demo():
    assert any("kdmetrics demo" in c for c in readme_commands())


def test_type_stubs_match_the_extension():
    out = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "kdmetrics._core"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_py_typed_ships():
    assert (ROOT / "python" / "kdmetrics" / "py.typed").exists()


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, cwd=ROOT)


def test_python_lint_and_format():
    for cmd in (
        ("ruff", "check", "python", "tests", "benches"),
        ("ruff", "format", "--check", "python", "tests", "benches"),
    ):
        out = _run(sys.executable, "-m", *cmd)
        assert out.returncode == 0, out.stdout + out.stderr


def test_python_types():
    out = _run(sys.executable, "-m", "mypy", "python/kdmetrics")
    assert out.returncode == 0, out.stdout + out.stderr


def test_rust_format():
    out = _run("cargo", "fmt", "--check")
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_paths_exist():
    """Every repository path the README names in backticks exists."""
    text = (ROOT / "README.md").read_text()
    paths = set(
        re.findall(r"`((?:examples|docs|benches|tests|python|rust)/[A-Za-z0-9_./-]+)`", text)
    )
    paths |= set(re.findall(r"\]\(((?:docs|examples)/[A-Za-z0-9_./-]+)\)", text))
    assert paths, "the README names no paths: the check would be empty"
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert not missing, missing


def test_no_citation_of_files_outside_the_repository():
    """The repository stands alone: no spec file outside it is cited."""
    pattern = "S" + "PEC|\\.\\./" + "shared"  # split, so this file does not match itself
    out = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", pattern, "--", "."],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode == 1, out.stdout  # 1: no match
