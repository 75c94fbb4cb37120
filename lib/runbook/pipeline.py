"""The pipeline: papermill executes each stage notebook into the run folder.

Stages run in pipeline order, each in a fresh kernel, and talk only through
files in the run folder. When a stage fails its executed notebook is kept, the
later stages are skipped, and teardown still runs; an interrupt (Ctrl-C, SIGTERM)
skips to teardown too. While one stage runs, the next stages' kernels are already
starting, so kernel start-up costs the run almost nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runbook.core.config import STAGES, RunConfig, parameters_for, project_root
from runbook.core.errors import EXIT_INTERRUPTED, ConfigError, RunbookError, StageFailed
from runbook.core import progress
from runbook.core.progress import Follower
from runbook.kernels import ENGINE, KERNEL, KernelPool, StageKernel, import_papermill, register_engine
from runbook.github.rest_api import github_record
from runbook.core.rundir import RunFolder, new_run_id, read_json, utc_now
from runbook.stages import current_commit
from runbook.targets import describe, make_target

log = logging.getLogger(__name__)

#: How many stages ahead kernels start. Trivial stages take milliseconds and a kernel about a
#: second to boot: with three, the load test's kernel started only as ingress did and the load
#: test waited for it; with four it starts beside provision's. More only crowd two cores.
KERNEL_LOOKAHEAD = 4
#: Seconds into the load test before report.html's pages render beside it: Locust starts first.
PAGES_DELAY_S = 3.0
#: ... and before the kernels of the stages after it boot (three kernels at once would slow Locust's start).
UPCOMING_DELAY_S = 2.0
NOTEBOOKS: dict[str, str] = {stage: f"{i:02d}_{stage}.ipynb" for i, stage in enumerate(STAGES, 1)}


PASSED, FAILED, SKIPPED, INTERRUPTED = "passed", "failed", "skipped", "interrupted"


@dataclass
class StageResult:
    stage: str
    status: str  # PASSED | FAILED | SKIPPED | INTERRUPTED
    wall_time_s: float = 0.0
    notebook: str = ""
    error: str = ""


def stages_to_run(config: RunConfig) -> list[str]:
    """The chosen stages; teardown joins any run that provisions, so nothing is left behind."""
    chosen = list(config.stages)
    if "provision" in chosen and "teardown" not in chosen:
        chosen.append("teardown")
    return chosen


def notebook_path(stage: str) -> Path:
    return project_root() / "notebooks" / NOTEBOOKS[stage]


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and defaults of a notebook's `parameters` cell."""
    papermill = import_papermill()  # slow to import: the first kernel boots meanwhile

    declared = papermill.inspect_notebook(str(notebook))
    if not declared:
        raise ConfigError("notebook", str(notebook), "has no cell tagged 'parameters'")
    return declared


def execute_stage(
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    *,
    kernel: StageKernel | None = None,
    log_output: bool = False,
    timeout: float | None = None,
) -> None:
    """Execute one notebook with papermill; unknown parameters are an error, not a warning."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    declared = declared_parameters(notebook)
    for name in parameters:
        if name not in declared:
            raise ConfigError(name, parameters[name], f"is not a parameter of {notebook.name}; it has {', '.join(declared)}")
    output.parent.mkdir(parents=True, exist_ok=True)
    register_engine()
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name=KERNEL,
            cwd=str(project_root()),
            log_output=log_output,
            progress_bar=False,
            execution_timeout=timeout,
            engine_name=ENGINE,
            stage_kernel=kernel,
        )
    except PapermillExecutionError as exc:
        raise StageFailed(notebook.stem, f"{exc.ename}: {exc.evalue}") from None


class Pipeline:
    def __init__(
        self,
        config: RunConfig,
        *,
        target_why: str = "",
        requested_target: str | None = None,
        log_output: bool = False,
        announce: Callable[[str], None] = print,
    ) -> None:
        self.config = config
        self.folder = RunFolder(config.run_path)
        self.target_why = target_why
        self.requested_target = requested_target or config.target
        self.log_output = log_output
        self.announce = announce
        self.github_groups = os.environ.get("GITHUB_ACTIONS") == "true"
        self.interactive = sys.stdout.isatty()
        self._line_open = False

    def run(self) -> int:
        """Run the chosen stages; returns the exit code (0 passed, 1 failed)."""
        chosen = stages_to_run(self.config)
        cwd = str(project_root())
        # The first kernels boot while the run folder, run.json and papermill's import get ready. No import
        # thread beside them: on two cores it slowed papermill's import, which the first stage waits for.
        # report.html's nbconvert is imported by the thread that renders each stage's notebook as it ends.
        kernels = KernelPool(cwd)
        kernels.warm(chosen[:KERNEL_LOOKAHEAD])
        self.folder.create()
        record = self._start_record()
        self.folder.write_run(record)
        self.folder.link_latest()
        results: list[StageResult] = []
        failed = False
        interrupted = ""
        from runbook.report.html_page import NotebookPages

        self._pages = NotebookPages()  # report.html's notebook pages, rendered while the next stages run
        try:
            for index, stage in enumerate(chosen):
                partial = interrupted == "load_test" and stage == "report" and self._partial_results()
                if (failed or interrupted) and stage != "teardown" and not partial:
                    results.append(StageResult(stage, SKIPPED))
                    self._record(record, results[-1])
                    self.announce(f"--- {stage} skipped ({'interrupted' if interrupted else 'an earlier stage failed'})")
                    continue
                # Warm up the next kernels while this stage runs; during the load test, once Locust has started.
                kernel = kernels.take(stage)
                upcoming = [s for s in chosen[index + 1:] if not (failed or interrupted) or s == "teardown"]
                kernels.warm(upcoming[:KERNEL_LOOKAHEAD], delay=UPCOMING_DELAY_S if stage == "load_test" else 0.0)
                if stage == "load_test":
                    # The earlier notebooks render while Locust runs (after its own start), not while short stages do.
                    self._pages.start(delay=PAGES_DELAY_S)
                try:
                    result = self._run_stage(stage, index + 1, len(chosen), kernel)
                except KeyboardInterrupt:
                    if interrupted or stage == "teardown":
                        raise  # a second interrupt, or during teardown: stop now
                    # Ctrl-C or a cancelled CI job: skip the rest but still take the target down.
                    interrupted = stage
                    _quiet_after_interrupt()
                    result = StageResult(stage, INTERRUPTED, error="interrupted (SIGINT or SIGTERM)")
                    then = "reporting what it recorded, then teardown" if stage == "load_test" and self._partial_results() \
                        else "skipping to teardown"
                    self.announce(f"!!! {stage} interrupted; {then} (interrupt again to stop at once)")
                results.append(result)
                self._record(record, result)
                if stage == "load_test":
                    self._pages.stop()  # the later stages are short: their notebooks render at the end
                if result.notebook:
                    self._pages.add(self.folder.path / result.notebook)
                if result.status == FAILED:
                    failed = True
                    self._diagnose(stage, result)
        finally:
            kernels.close()
        self._write_html_report()
        if interrupted:
            record.update(finished=utc_now(), status=INTERRUPTED, verdict=None, exit_code=EXIT_INTERRUPTED)
            self.folder.write_run(record)
            self.announce(f"run INTERRUPTED during {interrupted}; run folder: {self.folder.path} (exit code {EXIT_INTERRUPTED})")
            return EXIT_INTERRUPTED
        verdict = self._verdict(chosen, failed)
        record.update(finished=utc_now(), status=FAILED if failed or verdict == FAILED else PASSED, verdict=verdict)
        code = 1 if record["status"] == FAILED else 0
        record["exit_code"] = code
        self.folder.write_run(record)
        self._closing_line(results, verdict, code)
        return code

    def _run_stage(self, stage: str, number: int, total: int, kernel: StageKernel) -> StageResult:
        label = f"[{number}/{total}] {stage}"
        if self.github_groups:
            self.announce(f"::group::{label}")
        self.announce(f"==> {label} started")
        output = self.folder.notebooks / NOTEBOOKS[stage]
        notebook = notebook_path(stage)
        parameters = parameters_for(self.config, declared_parameters(notebook))
        started = time.monotonic()
        timeout = max(1800.0, self.config.run_time + 600.0)
        try:
            try:
                with Follower(self.folder.path / progress.FILE, self._show_progress):
                    _interruptible(lambda: execute_stage(notebook, output, parameters, kernel=kernel,
                                                         log_output=self.log_output, timeout=timeout), kernel)
            finally:
                if self._line_open:  # end the line that was updating in place
                    print(flush=True)
                    self._line_open = False
            result = StageResult(stage, PASSED)
        except StageFailed as exc:
            result = StageResult(stage, FAILED, error=exc.error)
        except RunbookError as exc:
            result = StageResult(stage, FAILED, error=str(exc))
        except Exception as exc:  # a kernel that died, a papermill I/O error: still a failed stage
            result = StageResult(stage, FAILED, error=f"{type(exc).__name__}: {exc}")
        finally:
            kernel.stop()
        result.wall_time_s = round(time.monotonic() - started, 2)
        result.notebook = str(output.relative_to(self.folder.path)) if output.exists() else ""
        if self.github_groups:
            self.announce("::endgroup::")
        if result.status == PASSED:
            self.announce(f"<== {label} passed in {result.wall_time_s:.1f}s")
        else:
            where = f"; executed notebook: {output}" if output.exists() else ""
            self.announce(f"<== {label} FAILED in {result.wall_time_s:.1f}s: {result.error}{where}")
        return result

    def _write_html_report(self) -> None:
        """report/report.html: the one file to open; never fails the run."""
        from runbook.report import html_page

        try:
            path = html_page.write(self.folder, getattr(self, "_pages", None))
            self.announce(f"    report: {path}")
        except Exception as exc:
            log.warning("could not write report.html: %s", exc)

    def _partial_results(self) -> bool:
        """An interrupted load test left the requests it recorded (load_test/profile.json marked interrupted)."""
        profile = self.folder.load_test / "profile.json"
        return profile.is_file() and bool(read_json(profile).get("interrupted"))

    def _show_progress(self, line: str) -> None:
        """A stage's progress line: updated in place on a terminal, one line each in a log (CI)."""
        if self.interactive:
            print(f"\r\033[K    {line}", end="", flush=True)
            self._line_open = True
        else:
            self.announce(f"    {line}")

    def _diagnose(self, stage: str, result: StageResult) -> None:
        diagnostics = self.folder.diagnostics
        diagnostics.mkdir(parents=True, exist_ok=True)
        (diagnostics / f"{stage}-error.txt").write_text(result.error + "\n")
        if any(p.name != f"{stage}-error.txt" for p in diagnostics.iterdir()):
            return  # the stage collected its own
        try:
            files = make_target(self.config, self.folder).collect_diagnostics()
            if files:
                self.announce(f"    diagnostics: {', '.join(files)}")
        except Exception as exc:  # never let diagnostics hide the failure itself
            log.warning("collecting diagnostics failed: %s", exc)

    def _start_record(self) -> dict[str, Any]:
        previous = self.folder.read_run()
        target = {
            "name": self.config.target,
            "requested": self.requested_target,
            "why": self.target_why,
            "description": describe(self.config.target),
        }
        # A later invocation on the same run folder (teardown, publish) keeps what the run itself recorded.
        keep_previous = bool(previous) and "provision" not in self.config.stages
        return {
            "run_id": previous.get("run_id") or self.folder.path.name,
            "run_dir": str(self.folder.path),
            "started": previous.get("started") or utc_now(),
            "commit": previous.get("commit") or current_commit(),
            "target": previous["target"] if keep_previous and previous.get("target") else target,
            "config": previous["config"] if keep_previous and previous.get("config") else self.config.to_parameters(),
            "github": previous.get("github") or github_record(),
            "stages": previous.get("stages", {}),
            "invocations": [*previous.get("invocations", []),
                            {"stages": stages_to_run(self.config), "target": self.config.target, "started": utc_now()}],
        }

    def _record(self, record: dict[str, Any], result: StageResult) -> None:
        record["stages"][result.stage] = {
            "status": result.status,
            "wall_time_s": result.wall_time_s,
            "notebook": result.notebook,
            "error": result.error or None,
            "at": utc_now(),
        }
        self.folder.write_run(record)

    def _verdict(self, chosen: list[str], failed: bool) -> str | None:
        result_json = self.folder.report / "result.json"
        if "report" in chosen and not failed and result_json.is_file():
            return str(read_json(result_json)["status"])
        return None

    def _why_failed(self) -> str:
        """The load test's failed verdict in words: the comparison's answer, else the SLO checks that failed."""
        result = read_json(self.folder.report / "result.json")
        comparison = result.get("comparison") or {}
        if comparison.get("failed"):
            return f"against the base, {comparison['headline']}"
        failed = [f"{c['service']} {c['check']}" for c in (result.get("slo") or {}).get("checks", []) if not c["held"]]
        if failed:
            return "SLO checks failed: " + ", ".join(failed)
        if result.get("interrupted"):
            return "the load test was interrupted"
        return "a service got no requests"

    def _closing_line(self, results: list[StageResult], verdict: str | None, code: int) -> None:
        failed = [r for r in results if r.status == FAILED]
        if failed:
            first = failed[0]
            self.announce(f"run FAILED at stage {first.stage}: {first.error}")
        elif verdict == FAILED:
            why = self._why_failed()
            self.announce(f"run FAILED: {why}; see {self.folder.report / 'summary.md'}")
        else:
            self.announce(f"run passed ({', '.join(r.stage for r in results)})")
        self.announce(f"run folder: {self.folder.path} (exit code {code})")


#: How long an interrupted stage may take to clean up in its kernel (stop Locust, keep what it recorded).
INTERRUPT_GRACE_S = 20.0


def _interruptible(work: Callable[[], None], kernel: StageKernel) -> None:
    """Run a stage's notebook in a worker thread, so that an interrupt reaches the kernel, not papermill.

    papermill's client, in the main thread, would take SIGINT and SIGTERM over and kill the kernel
    mid-cell, leaving what the stage started (Locust) running and papermill's and asyncio's
    tracebacks behind. Here the main thread only waits: on an interrupt it interrupts the kernel,
    the cell raises KeyboardInterrupt there and cleans up, papermill records it and returns, and
    the interrupt goes on to the pipeline.
    """
    failure: list[BaseException] = []
    done = threading.Event()  # not Thread.join: an interrupted join marks a running thread as stopped

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the main thread
            failure.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name="stage", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        kernel.km.interrupt_kernel()
        done.wait(INTERRUPT_GRACE_S)
        raise
    if failure:
        raise failure[0]


def _quiet_after_interrupt() -> None:
    """After an interrupt, the pipeline's own line says what happened; papermill's and asyncio's
    complaints about the kernel it stopped (tracebacks included) would only bury it."""
    for name in ("papermill", "asyncio", "nbclient", "traitlets"):
        logging.getLogger(name).setLevel(logging.CRITICAL)


def default_run_dir() -> Path:
    return project_root() / "outputs" / new_run_id()
