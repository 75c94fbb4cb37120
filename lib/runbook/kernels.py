"""Kernels for the stage notebooks, started one stage ahead.

Starting a kernel and connecting a client to it costs about a second per
stage. A StageKernel launches its kernel and connects its client in the
background while the previous stage runs; papermill then executes the
notebook on that ready kernel through the small engine below.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import threading
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

from runbook.core.config import environment_without_secrets

log = logging.getLogger(__name__)

KERNEL = "python3"
ENGINE = "runbook"
#: The only stage whose kernel sees the secret variables.
SECRET_STAGES = frozenset({"publish"})
#: Modules a stage will import, loaded while its kernel waits (imports only: no state).
WARM_IMPORTS = {
    "load_test": ("runbook.stages", "runbook.load.runner"),
    "report": ("runbook.stages", "runbook.report.build", "IPython.display"),
}
CONNECT_TIMEOUT_S = 120.0


def kernel_environment(stage: str) -> dict[str, str]:
    env = dict(os.environ) if stage in SECRET_STAGES else environment_without_secrets()
    env.setdefault("MPLBACKEND", "Agg")
    return env


class StageKernel:
    """A kernel launched ahead of its stage, talking over Unix sockets in a private folder."""

    def __init__(self, stage: str, cwd: str) -> None:
        self.stage = stage
        self._sockets = tempfile.mkdtemp(prefix="runbook-kernel-")
        self.km = KernelManager(kernel_name=KERNEL, transport="ipc", ip=os.path.join(self._sockets, "k"))
        warm = ",".join(repr(f"import {module}") for module in WARM_IMPORTS.get(stage, ("runbook.stages",)))
        self.km.start_kernel(cwd=cwd, env=kernel_environment(stage), extra_arguments=[f"--IPKernelApp.exec_lines=[{warm}]"])
        self._kc: BlockingKernelClient | None = None
        self._error: BaseException | None = None
        self._connecting = threading.Thread(target=self._connect, name=f"connect-{stage}", daemon=True)
        self._connecting.start()

    def _connect(self) -> None:
        try:
            kc = self.km.client()
            kc.start_channels()
            kc.wait_for_ready(timeout=CONNECT_TIMEOUT_S)
            self._kc = kc
        except BaseException as exc:  # handed to the caller of client()
            self._error = exc

    def client(self) -> BlockingKernelClient:
        """The connected client; waits for the kernel to be ready if it is not yet."""
        self._connecting.join(CONNECT_TIMEOUT_S + 5)
        if self._error is not None:
            raise RuntimeError(f"the {self.stage} kernel did not start: {self._error}") from self._error
        if self._kc is None:
            raise RuntimeError(f"the {self.stage} kernel did not answer within {CONNECT_TIMEOUT_S:g}s")
        return self._kc

    def stop(self) -> None:
        """Close the client and kill the kernel in the background; nothing waits on it."""
        threading.Thread(target=self._stop, name=f"stop-{self.stage}", daemon=False).start()

    def _stop(self) -> None:
        self._connecting.join(CONNECT_TIMEOUT_S + 5)
        try:
            if self._kc is not None:
                self._kc.stop_channels()
                # jupyter_client's client owns a zmq context it created (a private flag says so) and
                # stop_channels() leaves it open; destroying it here, without lingering, is what lets a
                # run that starts a dozen kernels exit at once instead of waiting on their sockets.
                if self._kc._created_context and not self._kc.context.closed:
                    self._kc.context.destroy(linger=0)
                self._kc._created_context = False
            if self.km.has_kernel:
                self.km.shutdown_kernel(now=True)
        finally:
            shutil.rmtree(self._sockets, ignore_errors=True)


#: What papermill probes for at import, for notebook paths the runbook never uses (hdfs://, github://):
#: with pyarrow and PyGithub installed for other reasons, they cost the run's start about 0.25 s.
PAPERMILL_SKIPS = ("pyarrow.fs", "github")


def import_papermill() -> Any:
    """papermill, imported without the optional file systems it would load (PAPERMILL_SKIPS).

    While papermill imports, those modules read as absent, so papermill takes its own fallback (an
    error if such a path is ever used); afterwards they import as usual for whoever needs them.
    """
    if "papermill" in sys.modules:
        return sys.modules["papermill"]
    skipped = [name for name in PAPERMILL_SKIPS if name not in sys.modules]
    for name in skipped:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        import papermill
    finally:
        for name in skipped:
            sys.modules.pop(name, None)
    return papermill


def register_engine() -> None:
    """A papermill engine that executes on a StageKernel's ready kernel and client."""
    import_papermill()
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class ReadyKernelEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(  # type: ignore[override]
            cls,
            nb_man: Any,
            kernel_name: str,
            log_output: bool = False,
            stdout_file: Any = None,
            stderr_file: Any = None,
            start_timeout: int = 60,
            execution_timeout: float | None = None,
            stage_kernel: StageKernel | None = None,
            **kwargs: Any,
        ) -> Any:
            if stage_kernel is None:
                return super().execute_managed_notebook(
                    nb_man, kernel_name, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file,
                    start_timeout=start_timeout, execution_timeout=execution_timeout, **kwargs,
                )
            kwargs.pop("input_path", None)
            client = PapermillNotebookClient(
                nb_man, km=stage_kernel.km, kernel_name=kernel_name, timeout=execution_timeout,
                startup_timeout=start_timeout, log=logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file, **kwargs,
            )
            client.kc = stage_kernel.client()  # ready: nbclient skips its own connect-and-wait
            return client.execute()

    papermill_engines.register(ENGINE, ReadyKernelEngine)


class KernelPool:
    """Kernels started ahead of their stages: take() one for a stage, warm() the ones after it.

    warm() may wait a little first (while the load test's Locust starts, three kernels booting at once would
    slow it): it then starts from a timer, under a lock, and never after close().
    """

    def __init__(self, cwd: str) -> None:
        self.cwd = cwd
        self._kernels: dict[str, StageKernel] = {}
        self._lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._closed = False

    def take(self, stage: str) -> StageKernel:
        with self._lock:
            return self._kernels.pop(stage, None) or StageKernel(stage, self.cwd)

    def warm(self, stages: list[str], delay: float = 0.0) -> None:
        if delay > 0:
            later = threading.Timer(delay, self.warm, args=(stages,))
            later.daemon = True
            self._timers.append(later)
            later.start()
            return
        with self._lock:
            if self._closed:
                return  # the run is over: nothing more to start
            for stage in stages:
                if stage not in self._kernels:
                    self._kernels[stage] = StageKernel(stage, self.cwd)

    def close(self) -> None:
        """Stop every kernel not taken, and any still to come."""
        for timer in self._timers:
            timer.cancel()
        with self._lock:
            self._closed = True
            for kernel in self._kernels.values():
                kernel.stop()
            self._kernels.clear()
