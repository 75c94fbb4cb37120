"""kind/cluster-config.yaml and the Traefik values agree with each other and with the run's config."""

import re

import pytest
import yaml

from conftest import ROOT
from runbook.core.config import RunConfig
from runbook.core.errors import RunbookError
from runbook.targets.cluster import render_kind_config, traefik_node_port, traefik_release

KIND = yaml.safe_load((ROOT / "kind" / "cluster-config.yaml").read_text())
TRAEFIK = yaml.safe_load((ROOT / "k8s" / "traefik" / "values.yaml").read_text())


def test_two_nodes_with_their_roles_and_one_pinned_image():
    assert KIND["kind"] == "Cluster" and KIND["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert [node["role"] for node in KIND["nodes"]] == ["control-plane", "worker"]
    images = {node["image"] for node in KIND["nodes"]}
    assert len(images) == 1
    assert re.fullmatch(r"kindest/node:v1\.\d+\.\d+@sha256:[0-9a-f]{64}", images.pop())


def test_the_port_mapping_matches_traefik_and_the_ingress_port():
    (mapping,) = [m for node in KIND["nodes"] for m in node.get("extraPortMappings", [])]
    node_port = TRAEFIK["ports"]["web"]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert mapping["containerPort"] == node_port == traefik_node_port()
    assert mapping["hostPort"] == RunConfig().ingress_port == 8080
    assert mapping["listenAddress"] == "127.0.0.1" and mapping["protocol"] == "TCP"


def test_traefik_values_use_the_chart_40_service_layout():
    assert TRAEFIK["service"]["spec"]["type"] == "NodePort"
    assert "type" not in TRAEFIK["service"], "service.type is silently ignored by Traefik chart >= 40"
    assert TRAEFIK["metrics"]["prometheus"]["entryPoint"] == "metrics"
    assert TRAEFIK["resources"]["requests"]["cpu"] and TRAEFIK["resources"]["requests"]["memory"]
    forward = yaml.safe_load((ROOT / "k8s" / "traefik" / "values-port-forward.yaml").read_text())
    assert forward["service"]["spec"]["type"] == "ClusterIP" and forward["ports"]["web"]["nodePort"] is None


def test_traefik_chart_version_is_pinned():
    release = traefik_release()
    assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"]) and release["version"] == "41.3.0"
    assert release["repo"].startswith("https://") and release["name"] == "traefik"


def test_render_follows_the_configured_port():
    rendered = render_kind_config(RunConfig.from_parameters(ingress_port=9090))
    (mapping,) = [m for node in rendered["nodes"] for m in node.get("extraPortMappings", [])]
    assert mapping["hostPort"] == 9090 and mapping["containerPort"] == 30080


def test_port_forward_mode_drops_the_mapping():
    # The forward itself listens on the ingress port; a mapping there too would be "address in use".
    rendered = render_kind_config(RunConfig.from_parameters(ingress_mode="port-forward"))
    assert all("extraPortMappings" not in node for node in rendered["nodes"])
    assert [node["role"] for node in rendered["nodes"]] == ["control-plane", "worker"]


def test_a_mapping_that_misses_traefik_is_refused(tmp_path):
    (tmp_path / "kind").mkdir()
    (tmp_path / "k8s" / "traefik").mkdir(parents=True)
    broken = yaml.safe_load((ROOT / "kind" / "cluster-config.yaml").read_text())
    broken["nodes"][1]["extraPortMappings"][0]["containerPort"] = 30081
    (tmp_path / "kind" / "cluster-config.yaml").write_text(yaml.safe_dump(broken))
    (tmp_path / "k8s" / "traefik" / "values.yaml").write_text((ROOT / "k8s" / "traefik" / "values.yaml").read_text())
    with pytest.raises(RunbookError, match="containerPort 30081.*nodePort is 30080"):
        render_kind_config(RunConfig(), root=tmp_path)
