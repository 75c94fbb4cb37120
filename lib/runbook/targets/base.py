"""What every target offers the stages."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from runbook.core.config import RunConfig
from runbook.core.rundir import RunFolder
from runbook.load.in_cluster import ClusterLoad
from runbook.load.sampler import Sampling
from runbook.core.services import Service


@dataclass
class Outcome:
    """What a stage did, for a person reading the executed notebook."""

    stage: str
    applies: bool
    summary: str
    details: list[str] = field(default_factory=list)

    def _repr_markdown_(self) -> str:
        head = f"**{self.stage}**: {self.summary}" if self.applies else f"**{self.stage}** does not apply: {self.summary}"
        return "\n".join([head, "", *[f"- {line}" for line in self.details]])

    def __str__(self) -> str:
        return self._repr_markdown_()


class Target(abc.ABC):
    """A place the services run: a kind cluster, an existing cluster, or local processes.

    The contract every target keeps, so that any stage can run again or alone:
    - A target is built fresh in each stage's kernel from the config and the run folder; what
      it must find again (a pid, a kubeconfig, a namespace it created) lives in the run folder's
      target/ and baseline/, never in memory.
    - provision, install_ingress and deploy reuse what exists (the same run folder, the same
      cluster name): running one twice is safe and the second run says "reusing".
    - teardown is safe when nothing exists, and takes down only what the run started; with
      --keep-cluster it takes down nothing and says how to do it later (handled here, once).
    - collect_diagnostics never raises for what it cannot collect: it writes what it could, and
      a note of what it could not, to diagnostics/.
    - Everything the candidate gets, the baseline (with --baseline) gets too: routes, verify,
      diagnostics, teardown.
    """

    name: str = ""
    #: Said wherever results appear, so nobody mistakes a stand-in for a cluster.
    description: str = ""

    def __init__(self, config: RunConfig, folder: RunFolder, services: list[Service]) -> None:
        self.config = config
        self.folder = folder
        self.services = services

    def say(self, line: str) -> None:
        """A progress line for the person waiting: what the target waits for, and for how long at most."""
        from runbook.core import progress

        progress.say(self.folder.path, line)

    @property
    def baseline_services(self) -> list[Service]:
        """The baseline's services (own hosts), when the run has a baseline that is still in the comparison."""
        from runbook.targets import baseline

        prepared = baseline.load(self.folder) if self.config.baseline else None
        return prepared.service_list() if prepared else []

    @abc.abstractmethod
    def provision(self) -> Outcome:
        """Stand up what the services run on (a cluster, a namespace, the stand-in), or reuse it."""

    @abc.abstractmethod
    def install_ingress(self) -> Outcome:
        """Install Traefik from its pinned chart and wait until it answers (or say why it does not apply)."""

    @abc.abstractmethod
    def deploy(self) -> Outcome:
        """Deploy every service (and the baseline's) and wait until each has rolled out."""

    @contextlib.contextmanager
    def endpoint(self) -> Iterator[tuple[str, int]]:
        """The ingress endpoint (host, port) for the duration of the block; fails the block if it dies."""
        yield self.config.ingress_host, self.config.ingress_port

    def cluster_load(self) -> ClusterLoad:
        """Where Locust's pods run for --load-generator cluster (the configuration refuses it on a target without one)."""
        raise NotImplementedError(f"the {self.name} target cannot run Locust as pods")

    def sampling(self) -> Sampling:
        """What the load test's sampler reads on this target: Traefik's counters, pods, processes."""
        return Sampling(notes=[f"the {self.name} target offers no server-side measurements"])

    def teardown(self) -> Outcome:
        """Take down what the run started, unless --keep-cluster."""
        if self.config.keep_cluster:
            return Outcome("teardown", False, f"--keep-cluster: {self.kept()}; take it down later with "
                           f"`python -m runbook run --target {self.name} --stages teardown --output-dir {self.folder.path}`")
        return self.take_down()

    @abc.abstractmethod
    def kept(self) -> str:
        """What --keep-cluster leaves running, in a few words."""

    @abc.abstractmethod
    def take_down(self) -> Outcome:
        """Teardown proper: safe when nothing exists, removes only what the run started."""

    def collect_diagnostics(self) -> list[str]:
        """Write what helps explain a failure to the run's diagnostics/ and list the files."""
        return []
