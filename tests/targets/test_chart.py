"""The echo chart, rendered and linted by real Helm 3 and Helm 4 binaries, validated offline."""

import subprocess

import kubernetes_validate
import pytest
import yaml

from conftest import ROOT
from support.binaries import binaries

CHART = ROOT / "k8s" / "charts" / "echo"
KUBERNETES = "1.35.0"  # the minor of the pinned kind node image


@pytest.fixture(scope="module", params=["helm3", "helm4"])
def helm(request):
    path = binaries(request.param)["helm"]
    version = subprocess.run([path, "version", "--template", "{{.Version}}"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v3." if request.param == "helm3" else "v4.")
    return str(path)


def helm_run(helm, *args, check=True):
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=120, check=check)


def render(helm, service, *extra):
    out = helm_run(helm, "template", service, str(CHART), "--namespace", "runbook",
                   "--values", str(ROOT / "k8s" / "deployment" / service / "values.yaml"), *extra).stdout
    docs = [doc for doc in yaml.safe_load_all(out) if doc]
    return {(doc["kind"], doc["metadata"]["name"]): doc for doc in docs}


@pytest.mark.parametrize("service", ["foo", "bar"])
def test_lint_strict(helm, service):
    done = helm_run(helm, "lint", "--strict", str(CHART), "--values", str(ROOT / "k8s" / "deployment" / service / "values.yaml"), check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("service", ["foo", "bar"])
def test_rendered_manifests_validate_against_the_kubernetes_schemas(helm, service):
    manifests = render(helm, service)
    checked = 0
    for (kind, name), doc in manifests.items():
        if doc["apiVersion"].startswith("traefik.io/"):
            continue  # a CRD: checked by test_ingress_route below
        kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        checked += 1
    assert checked >= 6  # Deployment, Service, ServiceAccount, HPA, PDB, the test Pod


@pytest.mark.parametrize("service", ["foo", "bar"])
def test_production_settings(helm, service):
    m = render(helm, service)
    deployment = m[("Deployment", service)]
    assert "replicas" not in deployment["spec"], "with an HPA the chart must not render spec.replicas"
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "hashicorp/http-echo:1.0.0"
    assert f"-text={service}" in container["args"] and "-listen=:5678" in container["args"]
    assert container["ports"] == [{"name": "http", "containerPort": 5678, "protocol": "TCP"}]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert set(container["resources"]["requests"]) == {"cpu", "memory"}
    assert set(container["resources"]["limits"]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True and sc["capabilities"] == {"drop": ["ALL"]}
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway" and spread["nodeTaintsPolicy"] == "Honor"
    assert "minDomains" not in spread
    assert spread["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    (preferred,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pod["affinity"]["podAntiAffinity"]
    assert preferred["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"

    hpa = m[("HorizontalPodAutoscaler", service)]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] >= 2
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"

    pdb = m[("PodDisruptionBudget", service)]
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}}

    test_pod = m[("Pod", f"{service}-test-connection")]
    assert test_pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert service in test_pod["spec"]["containers"][0]["args"][0]


@pytest.mark.parametrize("service", ["foo", "bar"])
def test_ingress_route(helm, service):
    m = render(helm, service)
    route = m[("IngressRoute", service)]
    svc = m[("Service", service)]
    assert route["apiVersion"] == "traefik.io/v1alpha1"
    assert route["spec"]["entryPoints"] == ["web"]
    (rule,) = route["spec"]["routes"]
    assert rule["kind"] == "Rule" and rule["match"] == f"Host(`{service}.localhost`)"
    (backend,) = rule["services"]
    assert backend == {"name": svc["metadata"]["name"], "port": svc["spec"]["ports"][0]["port"]}
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_replicas_render_only_without_autoscaling(helm):
    m = render(helm, "foo", "--set", "autoscaling.enabled=false", "--set", "replicaCount=3")
    assert m[("Deployment", "foo")]["spec"]["replicas"] == 3
    assert ("HorizontalPodAutoscaler", "foo") not in m


def test_text_with_yaml_specials_stays_one_argument(helm):
    m = render(helm, "foo", "--set-string", "echo.text=a: b #c")
    assert "-text=a: b #c" in m[("Deployment", "foo")]["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ("replicaCount: two\n", "replicaCount"),
        ("replicas: 2\n", "replicas"),
        ("echo:\n  text: ''\n", "text"),
        ("ingressRoute:\n  host: Foo_Bar\n", "host"),
        ("autoscaling:\n  minReplicas: 0\n", "minReplicas"),
        ("image:\n  digest: latest\n", "digest"),
        ("spread:\n  whenUnsatisfiable: Sometimes\n", "whenUnsatisfiable"),
    ],
)
def test_schema_rejects_bad_values(helm, tmp_path, values, complaint):
    bad = tmp_path / "bad.yaml"
    bad.write_text(values)
    done = helm_run(helm, "template", "foo", str(CHART), "--values", str(ROOT / "k8s" / "deployment" / "foo" / "values.yaml"),
                    "--values", str(bad), check=False)
    assert done.returncode != 0
    assert "schema" in done.stderr.lower() and complaint in done.stderr


def test_notes_tell_how_to_reach_the_service():
    # Helm 4 only: Helm 3's `install --dry-run=client` still downloads the cluster's OpenAPI document.
    helm = str(binaries("helm4")["helm"])
    done = helm_run(helm, "install", "foo", str(CHART), "--dry-run=client", "--namespace", "runbook",
                    "--values", str(ROOT / "k8s" / "deployment" / "foo" / "values.yaml"))
    assert "curl -H 'Host: foo.localhost' http://127.0.0.1:8080/" in done.stdout
    assert "helm test foo --namespace runbook" in done.stdout


def test_the_chart_readme_documents_every_value_and_is_up_to_date():
    import yaml

    from runbook.targets import chart_readme

    readme = (ROOT / "k8s" / "charts" / "echo" / "README.md").read_text()
    assert readme == chart_readme.render(), "run python -m runbook.targets.chart_readme"
    values = yaml.safe_load((ROOT / "k8s" / "charts" / "echo" / "values.yaml").read_text())
    for key in chart_readme.leaves(values):
        assert f"| `{key}` |" in readme, key


def test_a_value_without_its_comment_is_refused(tmp_path):
    import shutil

    from runbook.targets import chart_readme

    shutil.copytree(ROOT / "k8s" / "charts" / "echo", tmp_path / "k8s" / "charts" / "echo")
    values = tmp_path / "k8s" / "charts" / "echo" / "values.yaml"
    values.write_text(values.read_text() + "\nextra:\n  undocumented: 1\n")
    with pytest.raises(ValueError, match="no `# --` comment for: extra.undocumented"):
        chart_readme.render(tmp_path)


def test_the_baseline_release_renders_under_its_own_name_and_host(helm):
    # What deploy passes for the base commit's chart: its own release name, and --set-string for the host.
    out = helm_run(helm, "template", "foo-baseline", str(CHART), "--namespace", "runbook-baseline",
                   "--values", str(ROOT / "k8s" / "deployment" / "foo" / "values.yaml"),
                   "--set-string", "ingressRoute.host=foo.baseline.localhost").stdout
    docs = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out) if d}
    route = docs[("IngressRoute", "foo-baseline")]
    assert route["spec"]["routes"][0]["match"] == "Host(`foo.baseline.localhost`)"
    assert route["spec"]["routes"][0]["services"][0]["name"] == "foo-baseline"
    assert ("Deployment", "foo-baseline") in docs and ("Service", "foo-baseline") in docs
