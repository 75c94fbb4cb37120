"""The echo chart's README: a table of its values, made from the `# --` comments in values.yaml.

Every leaf value carries a comment that starts with `# --` (continued on following `#`
lines), as helm-docs reads them. This writes k8s/charts/echo/README.md from them, so
the table cannot drift from the file; a test fails when the README is out of date.

    python -m runbook.targets.chart_readme          # rewrite the README
    python -m runbook.targets.chart_readme --check  # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from runbook.core.config import project_root

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):")


def chart_folder(root: Path | None = None) -> Path:
    return (root or project_root()) / "k8s" / "charts" / "echo"


def documented(values_text: str) -> dict[str, str]:
    """{dotted key: description} for every key that has a `# --` comment right above it."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    comment: list[str] | None = None
    for line in values_text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped[4:].strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped[1:].strip())
            continue
        match = _KEY.match(line)
        if match:
            indent = len(match["indent"])
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, match["key"]))
            if comment is not None:
                found[".".join(key for _, key in stack)] = " ".join(comment)
        comment = None
    return found


def leaves(values: Any, prefix: str = "") -> dict[str, Any]:
    """{dotted key: default} for every leaf (a scalar, a list, or an empty mapping)."""
    if isinstance(values, dict) and values:
        out: dict[str, Any] = {}
        for key, value in values.items():
            out.update(leaves(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: values}


def render(root: Path | None = None) -> str:
    folder = chart_folder(root)
    text = (folder / "values.yaml").read_text()
    chart = yaml.safe_load((folder / "Chart.yaml").read_text())
    docs = documented(text)
    rows = []
    missing = []
    for key, default in leaves(yaml.safe_load(text)).items():
        if key not in docs:
            missing.append(key)
        rows.append(f"| `{key}` | `{json.dumps(default)}` | {docs.get(key, '')} |")
    if missing:
        raise ValueError(f"values.yaml has no `# --` comment for: {', '.join(missing)}")
    return "\n".join([
        f"# {chart['name']} chart",
        "",
        chart["description"] + ".",
        "",
        f"Chart version {chart['version']}, app version {chart['appVersion']}, Kubernetes {chart['kubeVersion']}.",
        "Made from the `# --` comments in `values.yaml` by `python -m runbook.targets.chart_readme`; do not edit by hand.",
        "",
        "| key | default | description |",
        "|---|---|---|",
        *rows,
        "",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m runbook.targets.chart_readme", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when README.md is not what values.yaml makes")
    args = parser.parse_args(argv)
    readme = chart_folder() / "README.md"
    wanted = render()
    if args.check:
        if not readme.is_file() or readme.read_text() != wanted:
            print(f"{readme} is out of date: run python -m runbook.targets.chart_readme", file=sys.stderr)
            return 1
        return 0
    readme.write_text(wanted)
    print(f"wrote {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
