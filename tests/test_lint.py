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
