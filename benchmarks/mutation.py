"""Mutation testing of the modules whose rules decide verdicts and safety, with mutmut.

mutmut plants one small bug at a time (a < for a <=, a 0 for a 1, a dropped argument) in the
modules listed under [tool.mutmut] in pyproject.toml and runs the tests that reach it; a
mutant the tests do not notice "survived". This prints the killed share per module, counting
timeouts as killed and leaving out the mutants listed in benchmarks/equivalent_mutants.txt
(changes that cannot alter behaviour, each with its reason).

    pip install mutmut==3.8.1
    python benchmarks/mutation.py            # mutmut run, then the table
    python benchmarks/mutation.py --report   # the table from the last run only
    mutmut show NAME                         # what a surviving mutant changed

Not in CI: it takes tens of minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def results() -> dict[str, str]:
    done = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=ROOT,
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
    lines = ["| module | mutants | killed | survived | no tests | equivalent | killed share |", "|---|---|---|---|---|---|---|"]
    for module, counts in sorted(per_module.items()):
        total = sum(counts.values()) - counts["equivalent"]
        killed = sum(counts[s] for s in KILLED)
        share = f"{killed / total:.0%}" if total else "–"
        lines.append(f"| `{module}` | {total} | {killed} | {counts['survived']} | {counts['no tests']} | "
                     f"{counts['equivalent']} | {share} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", action="store_true", help="only print the table of the last run")
    parser.add_argument("--max-children", type=int, default=2)
    args = parser.parse_args()
    if not args.report:
        subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children)], cwd=ROOT,
                       check=False, timeout=4 * 3600)
    statuses = results()
    print(table(statuses))
    survivors = [n for n, s in statuses.items() if s not in KILLED and n not in equivalent()]
    if survivors:
        print("\nnot killed (mutmut show NAME):")
        print("\n".join(f"  {n}: {statuses[n]}" for n in sorted(survivors)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
