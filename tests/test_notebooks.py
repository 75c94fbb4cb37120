"""The stage notebooks as committed: thin, parameterized, without outputs."""

import json

import papermill
import pytest

from conftest import ROOT
from runbook.core.config import STAGES, RunConfig
from runbook.pipeline import NOTEBOOKS

DEFAULTS = RunConfig().to_parameters()


@pytest.mark.parametrize("stage", STAGES)
def test_notebook_is_committed_clean(stage):
    notebook = json.loads((ROOT / "notebooks" / NOTEBOOKS[stage]).read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(not cell.get("outputs") and cell.get("execution_count") is None for cell in code)
    assert "parameters" in code[0]["metadata"].get("tags", []), "the first code cell is the parameters cell"
    assert notebook["cells"][0]["cell_type"] == "markdown"
    assert len(code) <= 4, "a stage notebook stays thin: logic belongs in lib/runbook"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("stage", STAGES)
def test_parameter_defaults_match_the_config(stage):
    declared = papermill.inspect_notebook(str(ROOT / "notebooks" / NOTEBOOKS[stage]))
    assert {"target", "run_dir", "services"} <= set(declared)
    for name, info in declared.items():
        assert name in DEFAULTS, f"{NOTEBOOKS[stage]} declares {name}, which RunConfig does not know"
        assert eval(info["default"]) == DEFAULTS[name], f"{NOTEBOOKS[stage]}: {name}"  # literals only


def test_notebooks_are_exactly_the_stages():
    assert sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")) == sorted(NOTEBOOKS.values())


@pytest.mark.notebooks
def test_a_stage_runs_with_the_plain_papermill_cli_and_a_parameters_file(tmp_path):
    """What the README shows for people who drive notebooks with papermill in their own pipelines."""
    import json
    import subprocess
    import sys

    import yaml

    from support.run_data import write_load_test

    run = tmp_path / "run"
    rows = [(1000 + i * 0.1, name, 3 + i % 4, 1, "") for i in range(80) for name in ("foo", "bar")]
    write_load_test(run / "load_test", rows)
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"target": "local", "run_dir": str(run)}))
    from pathlib import Path

    papermill = Path(sys.executable).parent / "papermill"
    done = subprocess.run([str(papermill), "notebooks/06_report.ipynb", str(tmp_path / "out.ipynb"), "-f", str(params)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((run / "report" / "result.json").read_text())["services"]["foo"]["requests"] == 80
    assert "Load test passed" in (tmp_path / "out.ipynb").read_text()


def test_papermill_is_imported_without_the_file_systems_it_would_probe():
    # In a fresh interpreter: the import leaves pyarrow.fs and PyGithub unloaded, papermill's own fallback
    # stands for them, and both import as usual afterwards (the report and publish stages use them).
    import subprocess
    import sys

    code = ("import sys; from runbook.kernels import PAPERMILL_SKIPS, import_papermill; import_papermill(); "
            "import papermill.iorw as io; loaded = [m for m in PAPERMILL_SKIPS if sys.modules.get(m)]; "
            "import github, pyarrow.fs; print(loaded, io.Github.__name__, github.Github.__name__)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[]", "missing_dep", "Github"]
