"""Mutation testing of the modules whose rules decide verdicts and safety, with mutmut.

mutmut plants one small bug at a time (a < for a <=, a 0 for a 1, a dropped argument) in the
modules listed under [tool.mutmut] in pyproject.toml and runs the tests that reach it; a
mutant the tests do not notice "survived". This prints the killed share per module, counting
timeouts as killed and leaving out the mutants listed in benchmarks/equivalent_mutants.txt
(changes that cannot alter behaviour, each with its reason).

    pip install -r requirements-dev.txt      # mutmut 3.8.1
    python benchmarks/mutation.py            # mutmut run, then the table
    python benchmarks/mutation.py --report   # the table from the last run only
    python benchmarks/mutation.py --only 'runbook.core.config*' --tests tests/core/test_config.py
                                             # one module against its own tests
    cd .cache/mutation && mutmut show NAME   # what a surviving mutant changed

mutmut names modules after their path and understands a src/ layout only, so it runs in a
copy of the checkout (.cache/mutation) with lib/ renamed src/. Not in CI: it takes tens of
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".cache" / "mutation"
EQUIVALENT = Path(__file__).with_name("equivalent_mutants.txt")
KILLED = {"killed", "timeout"}


def equivalent() -> dict[str, str]:
    """{mutant name: why it changes nothing} from the file (one per line: NAME  # reason)."""
    found = {}
    for line in EQUIVALENT.read_text().splitlines() if EQUIVALENT.is_file() else []:
        name, _, reason = line.partition("#")
        if name.strip():
            found[name.strip()] = reason.strip()
    return found


def prepare(tests: list[str] | None = None) -> None:
    """A copy of the tracked files with lib/ as src/, where mutmut's module names match the imports.

    tests: the test files mutants are run against, instead of pyproject.toml's selection.
    """
    import shutil

    shutil.rmtree(WORK, ignore_errors=True)
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        source = ROOT / name
        if not source.is_file():
            continue
        target = WORK / ("src" + name[3:] if name.startswith("lib/") else name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    config = WORK / "pyproject.toml"
    text = config.read_text().replace('"lib/runbook/', '"src/runbook/').replace('source_paths = ["lib"]', 'source_paths = ["src"]')
    if tests:
        start = text.index("pytest_add_cli_args_test_selection = [")
        end = text.index("]", start) + 1
        text = text[:start] + "pytest_add_cli_args_test_selection = " + json.dumps(tests) + text[end:]
    config.write_text(text)


def results() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=WORK,
                          capture_output=True, text=True, timeout=600, check=True)
    statuses = {}
    for line in done.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def table(statuses: dict[str, str]) -> str:
    skip = equivalent()
    per_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for name, status in statuses.items():
        module = name.rsplit(".", 1)[0]
        per_module[module]["equivalent" if name in skip else status] += 1
    lines = ["| module | mutants | run | killed | survived | no tests | equivalent | killed share |",
             "|---|---|---|---|---|---|---|---|"]
    for module, counts in sorted(per_module.items()):
        total = sum(counts.values())
        tested = total - counts["equivalent"] - counts["not checked"]
        killed = sum(counts[s] for s in KILLED)
        share = f"{killed / tested:.0%}" if tested else "not run"
        lines.append(f"| `{module}` | {total} | {tested} | {killed} | {counts['survived']} | {counts['no tests']} | "
                     f"{counts['equivalent']} | {share} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only print the table of the last run")
    parser.add_argument("--max-children", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=[], metavar="PATTERN",
                        help="mutant name patterns (runbook.analysis.slo*): run only those, in the existing copy if there is one")
    parser.add_argument("--tests", nargs="*", default=[], metavar="FILE",
                        help="run the mutants against these test files only (a fresh copy): a module's own tests")
    args = parser.parse_args()
    if not args.report:
        if args.tests or not (args.only and (WORK / "mutants").is_dir()):
            prepare(args.tests)
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children), *args.only],
                       cwd=WORK, check=False, timeout=4 * 3600)
    statuses = results()
    print(table(statuses))
    survivors = [n for n, s in statuses.items() if s not in KILLED and n not in equivalent()]
    if survivors:
        print("\nnot killed (mutmut show NAME):")
        print("\n".join(f"  {n}: {statuses[n]}" for n in sorted(survivors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
