"""The stage notebooks as committed: thin, parameterized, without outputs."""

import json

import papermill
import pytest

from conftest import ROOT
from runbook.config import STAGES, RunConfig
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
