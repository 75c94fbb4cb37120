"""kind, helm and kubectl: found, version-checked, and installable with verified checksums.

The kind and kubeconfig targets check their tools before anything starts. A
missing or too old tool is a ToolError that says how to get it;
`python -m runbook tools install` downloads the pinned releases below, checks
each file's SHA-256 before anything is unpacked or installed, and puts the
binaries in a cache folder that the runbook also searches.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runbook.core import commands
from runbook.core.errors import CommandError, ToolError

def default_cache() -> Path:
    """Where `tools install` puts binaries, searched after PATH: ~/.cache/runbook/bin (XDG_CACHE_HOME honoured)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "runbook" / "bin"


@dataclass(frozen=True)
class Release:
    """One pinned release: where each platform's file is and its SHA-256."""

    version: str
    url: str  # {os} and {arch} are filled in
    sha256: Mapping[str, str]  # "linux-amd64" -> hex digest
    member: str = ""  # path of the binary inside a .tar.gz; empty for a bare binary
    notes: str = ""


# Checksums as published with each release (and cross-checked against public projects
# that pin the same files). A platform without a pinned checksum is refused, not guessed.
RELEASES: dict[str, Release] = {
    "kind": Release(
        version="v0.33.0",
        url="https://github.com/kubernetes-sigs/kind/releases/download/v0.33.0/kind-{os}-{arch}",
        sha256={
            "linux-amd64": "aee6151561422756b764a4ae28e7f44cda5af5a9eead3cc9985112b1de8d8e0d",
            "linux-arm64": "20022bee6cfcd5086cb7234d218e3454e6090022f2a8f55d1fa7fcf42c3867a2",
        },
    ),
    "helm": Release(
        version="v4.1.4",
        url="https://get.helm.sh/helm-v4.1.4-{os}-{arch}.tar.gz",
        member="{os}-{arch}/helm",
        sha256={
            "linux-amd64": "70b2c30a19da4db264dfd68c8a3664e05093a361cefd89572ffb36f8abfa3d09",
            "linux-arm64": "13d03672be289045d2ff00e4e345d61de1c6f21c1257a45955a30e8ae036d8f1",
            "darwin-amd64": "abf09c8503ad1d8ef76d3737a058c3456a998aae5f5966fce4bb3031aeb1654e",
            "darwin-arm64": "7c2eca678e8001fa863cdf8cbf6ac1b3799f9404a89eb55c08260ef5732e658d",
        },
    ),
    "kubectl": Release(
        version="v1.35.1",
        url="https://dl.k8s.io/release/v1.35.1/bin/{os}/{arch}/kubectl",
        sha256={
            "linux-amd64": "36e2f4ac66259232341dd7866952d64a958846470f6a9a6a813b9117bd965207",
            "linux-arm64": "706256e21a4e9192ee62d1a007ac0bfcff2b0b26e92cc7baad487a6a5d08ff82",
            "darwin-amd64": "07a04d82bc2de2f5d53dfd81f2109ca864f634a82b225257daa2f9c2db15ccef",
            "darwin-arm64": "2b000dded317319b1ebca19c2bc70f772c7aaa0e8962fae2d987ba04dd1a1b50",
        },
    ),
}

#: The oldest versions the runbook supports (kind: the node image is built for 0.33).
MINIMUMS: dict[str, tuple[int, int, int]] = {"kind": (0, 33, 0), "helm": (3, 14, 0), "kubectl": (1, 30, 0)}
HOW_TO_GET = {
    "kind": "https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "helm": "https://helm.sh/docs/intro/install/",
    "kubectl": "https://kubernetes.io/docs/tasks/tools/",
    "docker": "https://docs.docker.com/engine/install/",
}
NEEDED: dict[str, tuple[str, ...]] = {"kind": ("docker", "kind", "kubectl", "helm"), "kubeconfig": ("kubectl", "helm")}


@dataclass(frozen=True)
class Tool:
    name: str
    path: str
    version: tuple[int, int, int]

    @property
    def version_text(self) -> str:
        return "v" + ".".join(map(str, self.version))

    @property
    def major(self) -> int:
        return self.version[0]


@dataclass
class Toolbox:
    """The tools a target uses, found and checked."""

    tools: dict[str, Tool] = field(default_factory=dict)

    def path(self, name: str) -> str:
        return self.tools[name].path if name in self.tools else name

    def helm_major(self) -> int:
        return self.tools["helm"].major if "helm" in self.tools else 3


def parse_version(text: str) -> tuple[int, int, int] | None:
    match = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


_VERSION_COMMANDS: dict[str, list[str]] = {
    "kind": ["version"],
    "helm": ["version", "--template", "{{.Version}}"],
    "kubectl": ["version", "--client", "-o", "json"],
}


def find(name: str, cache: Path | None = None) -> str | None:
    """The tool on PATH, else in the runbook's cache folder."""
    found = shutil.which(name)
    if found:
        return found
    cached = (cache or default_cache()) / name
    return str(cached) if cached.is_file() and os.access(cached, os.X_OK) else None


def tool_version(name: str, path: str, runner: Callable[..., commands.Result] = commands.run) -> tuple[int, int, int]:
    output = runner([path, *_VERSION_COMMANDS[name]], timeout=30).stdout
    if name == "kubectl":
        try:
            output = json.loads(output)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError):
            pass
    version = parse_version(output)
    if version is None:
        raise ToolError(f"{name} at {path} printed no version I can read: {output.strip()[:200]!r}")
    return version


def check_tools(
    target: str,
    runner: Callable[..., commands.Result] = commands.run,
    cache: Path | None = None,
) -> Toolbox:
    """Find and check every tool the target needs; raise ToolError naming each problem."""
    box = Toolbox()
    problems = []
    for name in NEEDED.get(target, ()):
        path = find(name, cache)
        if path is None:
            hint = f"install it ({HOW_TO_GET[name]})"
            if name in RELEASES:
                hint += " or run `python -m runbook tools install`"
            problems.append(f"{name} is not on PATH: {hint}")
            continue
        if name == "docker":
            try:
                runner([path, "version", "--format", "{{.Server.Version}}"], timeout=30)
            except CommandError as exc:
                last = (exc.stderr_tail.splitlines() or ["no output"])[-1]
                problems.append(f"docker does not answer ({last}): Docker is installed but its daemon is not running or "
                                "not reachable: start it (`sudo systemctl start docker`, or open Docker Desktop), check "
                                "that your user may use it (`docker version` shows a Server section), then run again")
            continue
        try:
            version = tool_version(name, path, runner)
        except (CommandError, ToolError) as exc:
            problems.append(f"{name} at {path} failed to report its version: {exc}")
            continue
        if version < MINIMUMS[name]:
            minimum = "v" + ".".join(map(str, MINIMUMS[name]))
            problems.append(
                f"{name} at {path} is v{'.'.join(map(str, version))}, older than the supported {minimum}: "
                f"upgrade it ({HOW_TO_GET[name]}) or run `python -m runbook tools install`"
            )
            continue
        box.tools[name] = Tool(name, path, version)
    if problems:
        raise ToolError(f"the {target} target cannot start:\n  " + "\n  ".join(problems))
    return box


def current_platform() -> str:
    system = platform.system().lower()
    machine = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine().lower(), platform.machine().lower())
    return f"{system}-{machine}"


def _download(url: str, timeout: float = 300.0) -> bytes:
    if not url.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise ToolError(f"refusing to download over an insecure URL: {url}")
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (https only, checked above)
        return response.read()


def install(
    dest: Path | None = None,
    names: tuple[str, ...] = ("kind", "helm", "kubectl"),
    releases: Mapping[str, Release] = RELEASES,
    system: str | None = None,
    mirror: str | None = None,
    fetch: Callable[[str], bytes] = _download,
) -> dict[str, Path]:
    """Download, verify and install the pinned releases into dest; returns {tool: path}.

    Every file's SHA-256 is checked before it is unpacked or written to dest; a
    mismatch installs nothing. mirror replaces each URL's folder (for a local copy).
    """
    system = system or current_platform()
    os_name, arch = system.split("-", 1)
    dest = dest or default_cache()
    dest.mkdir(parents=True, exist_ok=True)
    staged: dict[str, bytes] = {}
    for name in names:
        release = releases[name]
        expected = release.sha256.get(system)
        if not expected:
            raise ToolError(
                f"no pinned SHA-256 for {name} {release.version} on {system}; install it yourself ({HOW_TO_GET[name]})"
            )
        url = release.url.format(os=os_name, arch=arch)
        if mirror:
            url = f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[1]}"
        try:
            payload = fetch(url)
        except OSError as exc:
            raise ToolError(f"could not download {name} from {url}: {exc}") from None
        actual = hashlib.sha256(payload).hexdigest()
        if actual != expected:
            raise ToolError(f"{name} from {url} has SHA-256 {actual}, expected {expected}: not installed")
        staged[name] = _binary(name, release, payload, os_name, arch)
    installed = {}
    for name, binary in staged.items():
        with tempfile.NamedTemporaryFile(dir=dest, delete=False, prefix=f".{name}.") as out:
            out.write(binary)
        os.chmod(out.name, 0o755)
        os.replace(out.name, dest / name)
        installed[name] = dest / name
    return installed


def _binary(name: str, release: Release, payload: bytes, os_name: str, arch: str) -> bytes:
    if not release.member:
        return payload
    member = release.member.format(os=os_name, arch=arch)
    try:
        with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
            extracted = archive.extractfile(member)
            if extracted is None:
                raise KeyError(member)
            return extracted.read()
    except (KeyError, tarfile.TarError) as exc:
        raise ToolError(f"{name} archive has no {member}: {exc}") from None
