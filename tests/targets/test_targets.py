"""Choosing a target for --target auto, and building targets without starting anything."""

import pytest

from runbook import targets

from runbook.core import commands
from runbook.core.config import RunConfig
from runbook.core.errors import CommandError
from runbook.core.rundir import RunFolder
from runbook.targets import detect_target, make_target
from runbook.targets.local import LocalTarget
from runbook.core.errors import ToolError


def fake_which(present):
    return lambda name: f"/usr/bin/{name}" if name in present else None


def test_an_explicit_target_is_taken_as_asked(monkeypatch):
    assert detect_target("kubeconfig") == ("kubeconfig", "--target kubeconfig was asked for")


def test_auto_without_kind_is_local(monkeypatch, tmp_path):
    monkeypatch.setattr(targets.shutil, "which", fake_which({"docker"}))
    monkeypatch.setattr("runbook.targets.tools.shutil.which", fake_which({"docker"}))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    name, why = detect_target("auto")
    assert name == "local" and "kind is not on PATH" in why


def test_auto_with_a_silent_docker_is_local_and_says_why(monkeypatch):
    monkeypatch.setattr(targets.shutil, "which", fake_which({"docker", "kind"}))
    monkeypatch.setattr("runbook.targets.tools.shutil.which", fake_which({"docker", "kind"}))

    def no_daemon(argv, **_kwargs):
        raise CommandError(list(argv), 1, "Cannot connect to the Docker daemon at unix:///var/run/docker.sock")

    monkeypatch.setattr(commands, "run", no_daemon)
    name, why = detect_target("auto")
    assert name == "local" and "Docker does not answer (Cannot connect to the Docker daemon" in why


def test_auto_with_docker_and_kind_is_kind(monkeypatch):
    monkeypatch.setattr(targets.shutil, "which", fake_which({"docker", "kind"}))
    monkeypatch.setattr("runbook.targets.tools.shutil.which", fake_which({"docker", "kind"}))
    calls = []
    monkeypatch.setattr(commands, "run", lambda argv, **kw: calls.append((argv, kw["timeout"])) or commands.Result(argv, 0, "28.2.2", ""))
    assert detect_target("auto") == ("kind", "Docker answers and kind is on PATH")
    assert calls == [(["docker", "version", "--format", "{{.Server.Version}}"], 15)]


def test_make_target_builds_without_starting_anything(tmp_path):
    config = RunConfig.from_parameters(target="local", run_dir=str(tmp_path / "run"))
    target = make_target(config, RunFolder(config.run_path))
    assert isinstance(target, LocalTarget) and [s.name for s in target.services] == ["foo", "bar"]
    assert not (tmp_path / "run").exists()


def test_a_cluster_target_without_its_tools_is_refused_before_anything_starts(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # nor anything from `tools install`
    config = RunConfig.from_parameters(target="kind", run_dir=str(tmp_path / "run"))
    with pytest.raises(ToolError, match="the kind target cannot start"):
        make_target(config, RunFolder(config.run_path))
    assert not (tmp_path / "run").exists()


def test_auto_finds_kind_installed_by_the_runbook(monkeypatch, tmp_path):
    cache = tmp_path / "runbook" / "bin"
    cache.mkdir(parents=True)
    (cache / "kind").write_text("#!/bin/sh\n")
    (cache / "kind").chmod(0o755)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(targets.shutil, "which", fake_which({"docker"}))
    monkeypatch.setattr("runbook.targets.tools.shutil.which", fake_which({"docker"}))
    monkeypatch.setattr(commands, "run", lambda argv, **kw: commands.Result(argv, 0, "28.2.2", ""))
    assert detect_target("auto")[0] == "kind"
