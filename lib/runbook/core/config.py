"""The run's configuration: one immutable, validated object.

The CLI, the papermill parameters of each stage notebook and the environment all
end up here. Every value is checked once, before anything starts, and a bad one
raises ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runbook.core.errors import ConfigError

STAGES: tuple[str, ...] = (
    "provision",
    "ingress",
    "deploy",
    "verify",
    "load_test",
    "report",
    "publish",
    "teardown",
)
TARGETS: tuple[str, ...] = ("auto", "local", "kind", "kubeconfig")
INGRESS_MODES: tuple[str, ...] = ("nodeport", "port-forward")
#: Where Locust runs: on this machine (one process, or --processes), or as a master and workers in the cluster.
LOAD_GENERATORS: tuple[str, ...] = ("local", "cluster")

#: With a baseline, the shortest --run-time: the comparison needs 8 blocks of 1 s (analysis.compare checks they agree).
COMPARISON_MIN_S = 8

_DURATION = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


#: Environment variables that hold secrets: only the publish stage's kernel sees them.
SECRET_VARIABLES: tuple[str, ...] = ("GITHUB_TOKEN", "GH_TOKEN")


def environment_without_secrets(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of the environment (os.environ by default) without SECRET_VARIABLES."""
    source = os.environ if env is None else env
    return {key: value for key, value in source.items() if key not in SECRET_VARIABLES}


def project_root() -> Path:
    """The checkout the runbook runs from (the folder holding lib/, k8s/, notebooks/)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "notebooks").is_dir():
        raise ConfigError(
            "project_root", str(root), "no notebooks/ folder here; install the runbook with "
            "'pip install -r requirements.txt' from its checkout"
        )
    return root


def parse_duration(name: str, value: object) -> int:
    """Whole seconds from 30, '30', '30s', '2m', '1m30s' or '1h'."""
    if isinstance(value, bool):
        raise ConfigError(name, value, "expected a duration such as 30s, 2m or 1m30s")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, float) and value.is_integer():
        seconds = int(value)
    elif isinstance(value, str) and value.strip() and (m := _DURATION.match(value.strip())):
        seconds = int(m["h"] or 0) * 3600 + int(m["m"] or 0) * 60 + int(m["s"] or 0)
    else:
        raise ConfigError(name, value, "expected a duration such as 30s, 2m or 1m30s")
    if seconds < 1:
        raise ConfigError(name, value, "must be at least 1 second")
    return seconds


def format_duration(seconds: int) -> str:
    return f"{seconds}s"


def _int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise ConfigError(name, value, "expected a whole number")
    try:
        number = int(value) if not isinstance(value, float) or value.is_integer() else None
    except (TypeError, ValueError):
        number = None
    if number is None:
        raise ConfigError(name, value, "expected a whole number")
    if not low <= number <= high:
        raise ConfigError(name, value, f"must be between {low} and {high}")
    return number


def _float(name: str, value: object, low: float, high: float, *, open_low: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(name, value, "expected a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(name, value, "expected a number") from None
    if number != number or (number <= low if open_low else number < low) or number > high:
        bound = f"greater than {low:g}" if open_low else f"at least {low:g}"
        raise ConfigError(name, value, f"must be {bound} and at most {high:g}")
    return number


def _bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in {"true", "1", "yes", "false", "0", "no"}:
        return value.lower() in {"true", "1", "yes"}
    raise ConfigError(name, value, "expected true or false")


def _choice(name: str, value: object, choices: Iterable[str]) -> str:
    options = tuple(choices)
    if value not in options:
        raise ConfigError(name, value, f"must be one of {', '.join(options)}")
    return str(value)


def _names(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = [str(part).strip() for part in value]
    else:
        raise ConfigError(name, value, "expected a comma-separated list")
    if not items or any(not item for item in items):
        raise ConfigError(name, value, "expected a non-empty comma-separated list")
    if len(set(items)) != len(items):
        raise ConfigError(name, value, "lists a name twice")
    return tuple(items)


def _stages(value: object) -> tuple[str, ...]:
    names = _names("stages", value)
    for stage in names:
        if stage not in STAGES:
            raise ConfigError("stages", stage, f"unknown stage; the stages are {', '.join(STAGES)}")
    order = [STAGES.index(stage) for stage in names]
    if order != sorted(order):
        raise ConfigError("stages", value, f"stages must be in pipeline order: {', '.join(STAGES)}")
    return names


def _services(value: object) -> tuple[str, ...]:
    names = _names("services", value)
    for service in names:
        if not _DNS_LABEL.match(service) or len(service) > 40:
            raise ConfigError(
                "services", service, "a service name must be a lowercase DNS label of at most 40 characters"
            )
    return names


def _loopback(value: object) -> str:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        raise ConfigError("ingress_host", value, "expected an IP address such as 127.0.0.1") from None
    if not address.is_loopback:
        raise ConfigError("ingress_host", value, "load and test traffic goes to a loopback address only")
    return str(address)


_BRANCH = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")


def _branch(value: object) -> str:
    text = str(value)
    if not _BRANCH.match(text) or ".." in text or text.endswith((".", "/", ".lock")) or "//" in text:
        raise ConfigError("assets_branch", value, "expected a branch name such as runbook-assets")
    return text


def _dns_name(name: str, value: object) -> str:
    text = str(value)
    if not _DNS_LABEL.match(text) or len(text) > 63:
        raise ConfigError(name, value, "expected a lowercase DNS label (a-z, 0-9, '-')")
    return text


def _nonempty(name: str, value: object) -> str:
    text = str(value or "").strip()
    if not text:
        raise ConfigError(name, value, "must not be empty")
    return text


def _delays(value: object, services: tuple[str, ...], target: str, baseline: str) -> str:
    """SERVICE=MS[,SERVICE=MS]: the candidate side of SERVICE answers MS ms later (local target only)."""
    text = str(value or "").strip()
    if not text:
        return ""
    if target not in ("local", "auto"):  # auto is checked again once resolved
        raise ConfigError("inject_delay", text, f"only the local target can delay its answers (target is {target}); "
                          "it is a sensitivity check of the comparison, not a property of a cluster")
    parts = []
    for part in text.split(","):
        name, sep, ms = part.strip().partition("=")
        if not sep or name not in services:
            raise ConfigError("inject_delay", part, f"expected SERVICE=MS with SERVICE one of {', '.join(services)}")
        try:
            delay = _float("inject_delay", ms, 0.0, 10_000.0, open_low=True)
        except ConfigError as exc:
            raise ConfigError("inject_delay", part, f"the milliseconds {exc.reason}") from None
        parts.append(f"{name}={delay:g}")
    if not baseline:
        raise ConfigError("inject_delay", text, "it calibrates the comparison with the base: give --baseline too "
                          "(without one it would only slow the service down, and nothing would judge it)")
    return ",".join(parts)


def _generator(raw: Mapping[str, Any], target: str) -> tuple[int, str, int]:
    """--processes, --load-generator and --workers, checked together: each applies to one kind of generator."""
    processes = _int("processes", raw["processes"], -1, 512)
    if processes == 0:
        raise ConfigError("processes", raw["processes"], "must be 1 (one process), N (N worker processes) or -1 (one per core)")
    generator = _choice("load_generator", raw["load_generator"], LOAD_GENERATORS)
    workers = _int("workers", raw["workers"], 1, 1000)
    if generator == "cluster":
        if target == "local":
            raise ConfigError("load_generator", generator, "--load-generator cluster runs Locust as pods in the "
                              "cluster: it needs --target kind or kubeconfig (on this machine, use --processes)")
        if processes != 1:
            raise ConfigError("processes", raw["processes"], "--processes is for Locust on this machine; with "
                              "--load-generator cluster give --workers (the number of worker pods)")
    elif workers != RunConfig.workers:
        raise ConfigError("workers", raw["workers"], "--workers counts worker pods of --load-generator cluster; "
                          "on this machine use --processes")
    return processes, generator, workers


@dataclass(frozen=True)
class RunConfig:
    """Everything a run needs to know. Build it with from_parameters()."""

    target: str = "auto"
    users: int = 100
    spawn_rate: float = 10.0
    run_time: int = 30
    wait_min: float = 0.0
    wait_max: float = 1.0
    request_timeout: float = 5.0
    preflight_timeout: float = 10.0  # how long the load test waits for every service to answer before it starts
    ingress_host: str = "127.0.0.1"
    ingress_port: int = 8080
    ingress_mode: str = "nodeport"
    services: tuple[str, ...] = ("foo", "bar")
    stages: tuple[str, ...] = STAGES
    keep_cluster: bool = False
    metrics_server: bool = True  # kind: install metrics-server so the autoscaler can act
    cluster_name: str = "runbook"
    context: str = ""
    namespace: str = ""
    pr: int = 0
    require_publish: bool = False
    assets_branch: str = "runbook-assets"
    slo: str = "load_test/slo.yaml"
    baseline: str = ""
    require_baseline: bool = False
    inject_delay: str = ""
    processes: int = 1  # Locust processes on this machine: 1, N (a master and N workers), -1 (one worker per core)
    load_generator: str = "local"  # local (this machine) or cluster (Locust's master and workers as pods)
    workers: int = 2  # --load-generator cluster: worker pods
    run_dir: str = field(default="outputs/interactive")

    @classmethod
    def from_parameters(cls, **params: Any) -> RunConfig:
        """Validate raw values (CLI strings or notebook literals); unknown names are rejected."""
        known = {f.name for f in dataclasses.fields(cls)}
        for name in params:
            if name not in known:
                raise ConfigError(name, params[name], f"unknown parameter; known: {', '.join(sorted(known))}")
        raw = {f.name: f.default for f in dataclasses.fields(cls)}
        raw.update(params)
        wait_min = _float("wait_min", raw["wait_min"], 0.0, 3600.0)
        wait_max = _float("wait_max", raw["wait_max"], 0.0, 3600.0)
        if wait_max < wait_min:
            raise ConfigError("wait_max", raw["wait_max"], f"must not be less than wait_min={wait_min:g}")
        target = _choice("target", raw["target"], TARGETS)
        services = _services(raw["services"])
        baseline = str(raw["baseline"] or "").strip()
        inject_delay = _delays(raw["inject_delay"], services, target, baseline)
        if baseline and (baseline.startswith("-") or any(c.isspace() for c in baseline)):
            raise ConfigError("baseline", baseline, "expected a git commit, branch or tag such as HEAD^1 or origin/main")
        context = str(raw["context"] or "")
        namespace = str(raw["namespace"] or "")
        if namespace:
            _dns_name("namespace", namespace)
            if baseline and len(namespace) > 63 - len("-baseline"):
                raise ConfigError("namespace", namespace, "with --baseline at most 54 characters: the baseline's "
                                  "namespace is this one with -baseline added, and a namespace has at most 63")
        users, spawn_rate = _int("users", raw["users"], 1, 100_000), _float("spawn_rate", raw["spawn_rate"], 0.0, 10_000.0, open_low=True)
        run_time = parse_duration("run_time", raw["run_time"])
        processes, load_generator, workers = _generator(raw, target)
        if baseline and run_time < COMPARISON_MIN_S:
            raise ConfigError("run_time", raw["run_time"], f"with --baseline at least {COMPARISON_MIN_S}s: the comparison "
                              "resamples blocks of 1 s and needs at least 8 of them")
        return cls(
            target=target,
            users=users,
            spawn_rate=spawn_rate,
            run_time=run_time,
            wait_min=wait_min,
            wait_max=wait_max,
            request_timeout=_float("request_timeout", raw["request_timeout"], 0.0, 300.0, open_low=True),
            preflight_timeout=_float("preflight_timeout", raw["preflight_timeout"], 0.0, 600.0, open_low=True),
            ingress_host=_loopback(raw["ingress_host"]),
            ingress_port=_int("ingress_port", raw["ingress_port"], 1, 65535),
            ingress_mode=_choice("ingress_mode", raw["ingress_mode"], INGRESS_MODES),
            services=services,
            stages=_stages(raw["stages"]),
            keep_cluster=_bool("keep_cluster", raw["keep_cluster"]),
            metrics_server=_bool("metrics_server", raw["metrics_server"]),
            cluster_name=_dns_name("cluster_name", raw["cluster_name"]),
            context=context,
            namespace=namespace,
            pr=_int("pr", raw["pr"], 0, 10**9),
            require_publish=_bool("require_publish", raw["require_publish"]),
            assets_branch=_branch(raw["assets_branch"]),
            slo=_nonempty("slo", raw["slo"]),
            baseline=baseline,
            require_baseline=_bool("require_baseline", raw["require_baseline"]),
            inject_delay=inject_delay,
            processes=processes,
            load_generator=load_generator,
            workers=workers,
            run_dir=str(raw["run_dir"]),
        )

    def replace(self, **changes: Any) -> RunConfig:
        """A validated copy with some values changed."""
        return RunConfig.from_parameters(**{**self.to_parameters(), **changes})

    def to_parameters(self) -> dict[str, Any]:
        """Plain values that papermill can inject and from_parameters() reads back."""
        values = dataclasses.asdict(self)
        values["run_time"] = format_duration(self.run_time)
        values["services"] = list(self.services)
        values["stages"] = list(self.stages)
        return values

    @property
    def delays(self) -> dict[str, float]:
        """--inject-delay as {service: milliseconds}."""
        return {name: float(ms) for name, _, ms in (part.partition("=") for part in self.inject_delay.split(",") if part)}

    @property
    def slo_path(self) -> Path:
        path = Path(self.slo)
        return path if path.is_absolute() else project_root() / path

    @property
    def run_path(self) -> Path:
        """The run folder; a relative run_dir is taken from the project root."""
        path = Path(self.run_dir)
        return path if path.is_absolute() else project_root() / path

    @property
    def ingress_url(self) -> str:
        return f"http://{self.ingress_host}:{self.ingress_port}"


def parameters_for(config: RunConfig, declared: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of the config that a notebook declares in its parameters cell."""
    values = config.to_parameters()
    return {name: values[name] for name in declared if name in values}
