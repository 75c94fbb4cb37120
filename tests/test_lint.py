"""The code has no unused or undefined names, syntax errors or likely bugs (ruff, rules in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

from conftest import ROOT


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run([str(ruff), "check", "lib", "tests", "benchmarks", "load_test"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_error_type_lives_in_the_errors_module():
    import ast

    from conftest import ROOT

    defined = []
    for path in (ROOT / "lib" / "runbook").rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases = [getattr(b, "id", getattr(b, "attr", "")) for b in node.bases]
                if any(b.endswith(("Error", "Exception")) or b in ("GiveUp", "Required") for b in bases):
                    defined.append(f"{path.name}:{node.name}")
        # Exit codes come from errors.exit_code(): no module spells 130 itself.
        assert "130" not in path.read_text(), path.name
    assert defined == []


def test_no_module_grows_past_400_lines():
    from conftest import ROOT

    sizes = {p.name: len(p.read_text().splitlines()) for p in (ROOT / "lib" / "runbook").rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > 400} == {}


def _lint_imports(cwd, lib):
    """import-linter on the package in lib, with the contracts of cwd/pyproject.toml."""
    import os

    lint = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(lib)}
    return subprocess.run([str(lint), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_layers_hold():
    done = _lint_imports(ROOT, ROOT / "lib")
    assert done.returncode == 0 and "1 kept, 0 broken" in done.stdout, done.stdout + done.stderr


def test_an_import_against_the_layers_fails(tmp_path):
    import shutil

    shutil.copytree(ROOT / "lib" / "runbook", tmp_path / "lib" / "runbook", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    upward = tmp_path / "lib" / "runbook" / "load" / "sampler.py"
    upward.write_text(upward.read_text() + "\nfrom runbook.report import summary  # noqa: E402 (upward, on purpose)\n")
    done = _lint_imports(tmp_path, tmp_path / "lib")
    assert done.returncode == 1 and "BROKEN" in done.stdout and "runbook.load.sampler -> runbook.report.summary" in done.stdout, done.stdout
    # A module in no layer fails too: every module must be placed.
    upward.write_text(upward.read_text().replace("from runbook.report import summary", ""))
    (tmp_path / "lib" / "runbook" / "helpers.py").write_text('"""unplaced"""\n')
    done = _lint_imports(tmp_path, tmp_path / "lib")
    assert done.returncode == 1 and "runbook.helpers" in done.stdout, done.stdout


def test_no_folder_of_the_package_holds_more_than_twelve_modules():
    folders = {}
    for path in (ROOT / "lib" / "runbook").rglob("*.py"):
        if "__pycache__" not in path.parts:
            folders.setdefault(str(path.parent.relative_to(ROOT / "lib")), []).append(path.name)
    assert {folder: len(names) for folder, names in folders.items() if len(names) > 12} == {}
    assert len(folders) >= 6  # the run, and its parts in folders
