"""Finding, version-checking and installing kind, helm and kubectl."""

import functools
import hashlib
import io
import json
import os
import stat
import tarfile
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import run_cli
from runbook.targets import tools
from runbook.core.errors import ToolError
from runbook.targets.tools import Release, check_tools, install, parse_version


def fake_tool(folder, name, output, code=0):
    path = folder / name
    assert "'" not in output
    path.write_text(f"#!/bin/sh\necho '{output}'\nexit {code}\n")  # builtins only: PATH holds just the fakes
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))
    return folder


def good_tools(folder):
    fake_tool(folder, "docker", "28.2.2")
    fake_tool(folder, "kind", "kind v0.33.0 go1.25.1 linux/amd64")
    fake_tool(folder, "helm", "v3.17.3")
    fake_tool(folder, "kubectl", json.dumps({"clientVersion": {"gitVersion": "v1.35.1"}}))


@pytest.mark.parametrize(("text", "version"), [("kind v0.33.0 go1.25 linux/amd64", (0, 33, 0)), ("v4.1.4+g05fa379", (4, 1, 4)),
                                               ("v1.34.5", (1, 34, 5)), ("nothing", None)])
def test_parse_version(text, version):
    assert parse_version(text) == version


def test_all_tools_found_and_checked(bin_dir, tmp_path):
    good_tools(bin_dir)
    box = check_tools("kind", cache=tmp_path / "no-cache")
    assert {name: tool.version for name, tool in box.tools.items()} == {
        "kind": (0, 33, 0), "helm": (3, 17, 3), "kubectl": (1, 35, 1)}
    assert box.helm_major() == 3 and box.path("kind") == str(bin_dir / "kind")


def test_missing_and_old_tools_each_say_how_to_get_them(bin_dir, tmp_path):
    good_tools(bin_dir)
    (bin_dir / "helm").unlink()
    fake_tool(bin_dir, "kind", "kind v0.20.0 go1.20 linux/amd64")
    fake_tool(bin_dir, "docker", "Cannot connect to the Docker daemon", code=1)
    with pytest.raises(ToolError) as caught:
        check_tools("kind", cache=tmp_path / "no-cache")
    message = str(caught.value)
    assert "helm is not on PATH" in message and "https://helm.sh/docs/intro/install/" in message
    assert "kind at" in message and "v0.20.0, older than the supported v0.33.0" in message
    assert "python -m runbook tools install" in message
    assert "docker does not answer (Cannot connect to the Docker daemon)" in message
    # Installed but not running: how to start it, not how to install it.
    assert "Docker is installed but its daemon is not running or not reachable: start it" in message
    assert "docs.docker.com/engine/install" not in message


def test_the_kubeconfig_target_needs_no_kind_or_docker(bin_dir, tmp_path):
    fake_tool(bin_dir, "helm", "v4.1.4")
    fake_tool(bin_dir, "kubectl", json.dumps({"clientVersion": {"gitVersion": "v1.35.1"}}))
    box = check_tools("kubeconfig", cache=tmp_path / "no-cache")
    assert set(box.tools) == {"helm", "kubectl"} and box.helm_major() == 4


def test_the_cache_folder_is_searched_after_path(bin_dir, tmp_path):
    good_tools(bin_dir)
    (bin_dir / "kind").unlink()
    cache = tmp_path / "cache"
    cache.mkdir()
    fake_tool(cache, "kind", "kind v0.33.0 go1.25.1 linux/amd64")
    assert check_tools("kind", cache=cache).path("kind") == str(cache / "kind")


class Mirror:
    """Files served over HTTP on 127.0.0.1, as a stand-in for the release hosts."""

    def __init__(self, folder):
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(folder))
        handler.log_message = lambda *args: None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mirror(tmp_path):
    files = tmp_path / "mirror"
    files.mkdir()
    (files / "kind-linux-amd64").write_bytes(b"#!/bin/sh\necho kind v0.33.0\n")
    (files / "kubectl").write_bytes(b"#!/bin/sh\necho kubectl\n")
    tar_bytes = io.BytesIO()
    with tarfile.open(fileobj=tar_bytes, mode="w:gz") as archive:
        data = b"#!/bin/sh\necho v4.1.4\n"
        info = tarfile.TarInfo("linux-amd64/helm")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        readme = tarfile.TarInfo("linux-amd64/README.md")
        readme.size = 2
        archive.addfile(readme, io.BytesIO(b"hi"))
    (files / "helm-v4.1.4-linux-amd64.tar.gz").write_bytes(tar_bytes.getvalue())
    served = Mirror(files)
    yield served, files
    served.close()


def releases_for(files):
    digest = lambda name: hashlib.sha256((files / name).read_bytes()).hexdigest()  # noqa: E731
    return {
        "kind": Release("v0.33.0", "https://example.invalid/dl/kind-{os}-{arch}", {"linux-amd64": digest("kind-linux-amd64")}),
        "helm": Release("v4.1.4", "https://example.invalid/helm-v4.1.4-{os}-{arch}.tar.gz",
                        {"linux-amd64": digest("helm-v4.1.4-linux-amd64.tar.gz")}, member="{os}-{arch}/helm"),
        "kubectl": Release("v1.35.1", "https://example.invalid/{os}/{arch}/kubectl", {"linux-amd64": digest("kubectl")}),
    }


def test_install_verifies_extracts_and_installs(mirror, tmp_path):
    served, files = mirror
    dest = tmp_path / "dest"
    installed = install(dest, releases=releases_for(files), system="linux-amd64", mirror=served.url)
    assert installed == {"kind": dest / "kind", "helm": dest / "helm", "kubectl": dest / "kubectl"}
    assert (dest / "helm").read_bytes() == b"#!/bin/sh\necho v4.1.4\n"
    assert (dest / "kind").read_bytes() == (files / "kind-linux-amd64").read_bytes()
    assert all(os.access(path, os.X_OK) for path in installed.values())


def test_a_checksum_mismatch_installs_nothing(mirror, tmp_path):
    served, files = mirror
    releases = releases_for(files)
    releases["kubectl"] = Release("v1.35.1", releases["kubectl"].url, {"linux-amd64": "0" * 64})
    dest = tmp_path / "dest"
    with pytest.raises(ToolError, match="kubectl from .* has SHA-256 [0-9a-f]{64}, expected 0{64}: not installed"):
        install(dest, releases=releases, system="linux-amd64", mirror=served.url)
    assert list(dest.iterdir()) == []  # kind and helm were verified but nothing is installed until all are


def test_an_archive_without_the_binary_is_refused(mirror, tmp_path):
    served, files = mirror
    releases = releases_for(files)
    releases["helm"] = Release("v4.1.4", releases["helm"].url, releases["helm"].sha256, member="{os}-{arch}/nothelm")
    with pytest.raises(ToolError, match="helm archive has no linux-amd64/nothelm"):
        install(tmp_path / "dest", names=("helm",), releases=releases, system="linux-amd64", mirror=served.url)


def test_a_platform_without_a_pinned_checksum_is_refused(tmp_path):
    with pytest.raises(ToolError, match="no pinned SHA-256 for kind v0.33.0 on darwin-arm64"):
        install(tmp_path, names=("kind",), system="darwin-arm64", fetch=lambda url: b"")


def test_plain_http_to_another_host_is_refused():
    with pytest.raises(ToolError, match="insecure URL"):
        tools._download("http://example.invalid/kind")


def test_every_pinned_release_has_a_linux_amd64_checksum():
    for name, release in tools.RELEASES.items():
        assert len(release.sha256["linux-amd64"]) == 64, name
        assert release.url.startswith("https://"), name


def test_cli_install_rejects_files_that_are_not_the_pinned_releases(mirror, tmp_path):
    served, _ = mirror
    dest = tmp_path / "dest"
    done = run_cli("tools", "install", "--dest", str(dest), "--only", "kind", "--mirror", served.url, timeout=60)
    assert done.returncode == 1
    assert f"expected {tools.RELEASES['kind'].sha256['linux-amd64']}: not installed" in done.stderr
    assert not (dest / "kind").exists()
