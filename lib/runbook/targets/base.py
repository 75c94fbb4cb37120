"""What every target offers the stages."""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from runbook.config import RunConfig
from runbook.rundir import RunFolder
from runbook.services import Service


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
    """A place the services run: a kind cluster, an existing cluster, or local processes."""

    name: str = ""
    #: Said wherever results appear, so nobody mistakes a stand-in for a cluster.
    description: str = ""

    def __init__(self, config: RunConfig, folder: RunFolder, services: list[Service]) -> None:
        self.config = config
        self.folder = folder
        self.services = services

    @property
    def baseline_services(self) -> list[Service]:
        """The baseline's services (own hosts), when the run has a baseline that is still in the comparison."""
        from runbook import baseline

        prepared = baseline.load(self.folder) if self.config.baseline else None
        return prepared.service_list() if prepared else []

    @abc.abstractmethod
    def provision(self) -> Outcome: ...

    @abc.abstractmethod
    def install_ingress(self) -> Outcome: ...

    @abc.abstractmethod
    def deploy(self) -> Outcome: ...

    @contextlib.contextmanager
    def endpoint(self) -> Iterator[tuple[str, int]]:
        """The ingress endpoint (host, port) for the duration of the block."""
        yield self.config.ingress_host, self.config.ingress_port

    @abc.abstractmethod
    def teardown(self) -> Outcome: ...

    def collect_diagnostics(self) -> list[str]:
        """Write what helps explain a failure to the run's diagnostics/ and list the files."""
        return []
