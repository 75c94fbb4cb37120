"""The local target: the echo services as a process on 127.0.0.1, no Kubernetes.

It stands in for the cluster so that every other stage runs for real on a
machine without Docker, and says so wherever its results appear.
"""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import sys
from pathlib import Path

from runbook.core import commands
from runbook.core import services as svc
from runbook.core.config import environment_without_secrets
from runbook.core.errors import GiveUp, PortInUse, StartFailed, WaitTimeout
from runbook.targets.standin import EXIT_PORT_IN_USE, HEALTH_PATH, METRICS_PATH
from runbook.core.rundir import read_json, utc_now, write_json
from runbook.load.sampler import STAND_IN_NOTE, PrometheusEndpoint, Sampling
from runbook.targets.base import Outcome, Target
from runbook.core.waiting import wait_for

log = logging.getLogger(__name__)

STATE_FILE = "local.json"
#: The stand-in's module: what the runbook starts, and how it recognises its own process again.
STAND_IN_MODULE = "runbook.targets.standin"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0


class LocalTarget(Target):
    name = "local"
    description = (
        "local: the echo services run as a process on this machine behind the same host routing; "
        "it stands in for the Kubernetes cluster, and its numbers say nothing about one"
    )

    @property
    def state_path(self) -> Path:
        return self.folder.target / STATE_FILE

    @property
    def log_path(self) -> Path:
        return self.folder.target / "local-ingress.log"

    def provision(self) -> Outcome:
        host, port = self.config.ingress_host, self.config.ingress_port
        running = self._running_state()
        if running:
            return Outcome("provision", True, f"reusing the local ingress (pid {running['pid']}) on {host}:{port}")
        ensure_port_free(host, port)
        routes = [f"--route={s.host}={s.expect}" for s in [*self.services, *self.baseline_services]]
        delays = [f"--delay={s.host}={self.config.delays[s.name]:g}" for s in self.services if s.name in self.config.delays]
        argv = [sys.executable, "-m", STAND_IN_MODULE, f"--listen={host}:{port}", *routes, *delays]
        # Its own session (commands.start): it must outlive this stage's kernel and ignore its signals.
        process = commands.start(argv, log_path=self.log_path, base_env=environment_without_secrets())
        state = {"pid": process.pid, "argv": argv, "host": host, "port": port, "started": utc_now()}
        write_json(self.state_path, state)
        try:
            wait_for(
                f"the local ingress to answer on {host}:{port}",
                lambda: self._health(process),
                timeout=START_TIMEOUT_S,
                interval=0.05,
            )
        except (WaitTimeout, GiveUp):
            code = process.poll()
            text = self.log_path.read_text(errors="replace").strip()
            if code is None:
                stop_process(process.pid)
            if code == EXIT_PORT_IN_USE:
                raise PortInUse(f"{host}:{port} is already in use: {text}; free it or pass --ingress-port") from None
            raise StartFailed(f"the local ingress did not start (exit code {code}): {text}") from None
        details = [f"{s.host} -> {s.name} (answers {s.expect!r})" for s in self.services]
        details += [f"{s.host} -> {s.name} of the baseline (answers {s.expect!r})" for s in self.baseline_services]
        details += [f"--inject-delay: {name} answers {ms:g} ms later (candidate side only)" for name, ms in self.config.delays.items()]
        details.append(f"pid {process.pid}, log {self.log_path}")
        return Outcome("provision", True, f"local ingress listening on {host}:{port}", details)

    def _health(self, process: commands.Background) -> tuple[bool, str, None]:
        code = process.poll()
        if code is not None:
            raise GiveUp(f"exited with code {code}")  # it will not answer by waiting longer
        probe = svc.Service(name="health", host="health", expect="ok", path=HEALTH_PATH)
        reply = svc.get(self.config.ingress_host, self.config.ingress_port, probe, timeout=1.0)
        return reply.status == 200, f"HTTP {reply.status}", None

    def install_ingress(self) -> Outcome:
        return Outcome(
            "ingress", False,
            "the local target routes by Host header inside its own process; there is no Traefik to install",
        )

    def deploy(self) -> Outcome:
        return Outcome(
            "deploy", False,
            "the local target serves each service's text from its values file; there is no Helm release",
            [f"{s.name}: host {s.host}, text {s.expect!r} from {s.values_file}" for s in self.services],
        )

    def sampling(self) -> Sampling:
        """The stand-in's Traefik-shaped metrics and its process; it has no pods, replicas or limits."""
        host, port = self.config.ingress_host, self.config.ingress_port
        state = self._running_state()
        labels = {f"{s.host}@local": {"service": s.name, "side": "candidate"} for s in self.services}
        labels.update({f"{s.host}@local": {"service": s.name, "side": "baseline"} for s in self.baseline_services})
        return Sampling(
            sources=[PrometheusEndpoint(f"http://{host}:{port}{METRICS_PATH}")],
            processes={"stand-in": int(state["pid"])} if state else {},
            labels=labels,
            notes=[STAND_IN_NOTE],
        )

    def kept(self) -> str:
        return "the local ingress stays up"

    def take_down(self) -> Outcome:
        if not self.state_path.is_file():
            return Outcome("teardown", True, "nothing to stop: this run started no local ingress")
        state = read_json(self.state_path)
        if state.get("stopped"):
            return Outcome("teardown", True, f"the local ingress (pid {state['pid']}) was already stopped")
        if is_our_process(state["pid"]):
            stop_process(state["pid"])
            summary = f"stopped the local ingress (pid {state['pid']})"
        else:
            summary = f"the local ingress (pid {state['pid']}) had already exited"
        write_json(self.state_path, {**state, "stopped": utc_now()})
        return Outcome("teardown", True, summary)

    def collect_diagnostics(self) -> list[str]:
        if not self.log_path.is_file():
            return []
        out = self.folder.diagnostics / "local-ingress.log"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.log_path.read_bytes())
        return [str(out)]

    def _running_state(self) -> dict[str, object] | None:
        if not self.state_path.is_file():
            return None
        state = read_json(self.state_path)
        if state.get("stopped") or not is_our_process(state["pid"]):
            return None
        if (state["host"], state["port"]) != (self.config.ingress_host, self.config.ingress_port):
            return None
        return state


def ensure_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"{host}:{port} is already in use by another process; free it or pass --ingress-port"
                ) from None
            raise StartFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def is_our_process(pid: int) -> bool:
    """True if pid is alive (not a zombie) and is a local ingress, not a reused pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0]
    return STAND_IN_MODULE in cmdline and state != "Z"


def stop_process(pid: int, timeout: float = STOP_TIMEOUT_S) -> None:
    """SIGTERM, then SIGKILL if it is still there after timeout seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    def gone() -> tuple[bool, str, None]:
        _reap(pid)
        return not is_our_process(pid), "still running", None

    try:
        wait_for(f"the local ingress (pid {pid}) to stop", gone, timeout=timeout, interval=0.05)
        return
    except WaitTimeout:
        pass
    log.warning("local ingress pid %s ignored SIGTERM for %ss; killing it", pid, timeout)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init reaps it
