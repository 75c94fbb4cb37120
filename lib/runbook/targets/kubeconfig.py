"""The kubeconfig target: an existing cluster from the kubeconfig context, confined to the run's namespaces.

Nothing cluster-wide is installed: Traefik goes into the run's namespace with namespaced RBAC, watching only
the run's namespaces (the baseline's too), and is reached by kubectl port-forward. Traefik's CRDs are the one
exception, said before anything starts when the cluster lacks them and the credentials may not create them.
The namespaces the run creates are labelled with it, and teardown deletes only those.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runbook.core.config import RunConfig
from runbook.core.errors import TargetNotReady
from runbook.core.rundir import RunFolder, utc_now
from runbook.core.services import Service
from runbook.targets.addons import traefik_release
from runbook.targets.base import Outcome
from runbook.targets.cluster import ClusterTarget


def _run_namespace(folder: RunFolder) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", folder.path.name.lower()).strip("-")
    return f"runbook-{slug}"[:63].rstrip("-")


class KubeconfigTarget(ClusterTarget):
    name = "kubeconfig"
    description = "kubeconfig: an existing cluster from the kubeconfig context"
    extra_traefik_values = ("values-kubeconfig.yaml",)

    def __init__(self, config: RunConfig, folder: RunFolder, services: list[Service], **kwargs: Any) -> None:
        self.namespace = config.namespace or _run_namespace(folder)
        super().__init__(config, folder, services, **kwargs)
        self.traefik_namespace = self.app_namespace = self.namespace

    def kubeconfig_path(self) -> str:
        # Empty: kubectl and Helm read $KUBECONFIG (which may list several files, a:b) or
        # ~/.kube/config themselves; neither takes a list as --kubeconfig.
        return ""

    def kube_context(self) -> str:
        return self.config.context

    def uses_port_forward(self) -> bool:
        return True  # the cluster's nodes are not on this machine's loopback

    def traefik_extra_args(self) -> list[str]:
        # Only this run's IngressRoutes (the baseline's namespace too): leave everything else in the cluster alone.
        # Namespaced RBAC (values-kubeconfig.yaml) makes a Role in each of these namespaces, no ClusterRole.
        watched = ",".join([self.namespace] + ([self.baseline_namespace] if self.config.baseline else []))
        args = ["--set", f"providers.kubernetesCRD.namespaces={{{watched}}}"]
        # Helm installs a chart's CRDs on a first install and never removes them: where they exist, leave them be.
        return args + (["--skip-crds"] if self.kube.crd_exists("ingressroutes.traefik.io") else [])

    def provision(self) -> Outcome:
        version = self.kube.kubectl("version", "-o", "json", timeout=30).stdout
        self.check_crd_rights()
        exists = not self._create_namespace(self.namespace)
        details = [f"namespace {self.namespace} {'exists already' if exists else 'created for this run'}"]
        # The baseline's namespace before Traefik is installed (a namespaced Traefik watches it from the start).
        base_exists = not self._create_namespace(self.baseline_namespace) if self.config.baseline else True
        if self.config.baseline:
            details.append(f"namespace {self.baseline_namespace} {'exists already' if base_exists else 'created for this run'}")
        state = self.state()
        self.save_state(namespace=self.namespace, created_namespace=not exists or state.get("created_namespace", False),
                        created_baseline_namespace=not base_exists or state.get("created_baseline_namespace", False),
                        context=self.kube_context() or "(current)", provisioned=utc_now())
        server = _server_version(version)
        return Outcome("provision", True, f"using the cluster of context {self.kube_context() or '(current)'} ({server})",
                       details)

    def check_crd_rights(self) -> None:
        """Traefik's CRDs are cluster-wide: where they are missing, the first install must be allowed to create them."""
        if self.kube.crd_exists("ingressroutes.traefik.io"):
            return
        answer = self.kube.kubectl("auth", "can-i", "create", "customresourcedefinitions.apiextensions.k8s.io",
                                   timeout=30, check=False).stdout.strip()
        if answer != "yes":
            release = traefik_release(self.root)
            raise TargetNotReady(
                "Traefik's CRDs (ingressroutes.traefik.io, ...) are not in this cluster, and these credentials may not "
                "create them (they are cluster-wide; kubectl auth can-i create customresourcedefinitions: "
                f"{answer or 'no'}). Ask a cluster admin to install them once, e.g. `helm show crds traefik "
                f"--repo {release['repo']} --version {release['version']} | kubectl apply --server-side -f -`, "
                "then run again: nothing was installed.")

    def _create_namespace(self, name: str) -> bool:
        """Create the namespace unless it exists, labelled with this run; True when this run created it."""
        if self.kube.kubectl("get", "namespace", name, "--ignore-not-found", "-o", "name", timeout=30).stdout.strip():
            return False
        run = re.sub(r"[^A-Za-z0-9_.-]", "-", self.folder.path.name)[:63].strip("-_.") or "run"
        self.kube.kubectl("create", "namespace", name, timeout=30)
        self.kube.kubectl("label", "namespace", name, "app.kubernetes.io/managed-by=runbook", f"runbook/run={run}", timeout=30)
        return True

    def kept(self) -> str:
        return f"namespace {self.namespace} and its releases stay"

    def take_down(self) -> Outcome:
        notes = self.uninstall_releases()
        done = self.kube.helm("uninstall", "traefik", "--namespace", self.namespace, "--wait", "--timeout", "120s", timeout=180, check=False)
        notes.append(f"helm uninstall traefik: {'done' if done.returncode == 0 else done.stderr.strip()[-200:]}")
        if self.config.baseline and self.state().get("created_baseline_namespace"):  # the run's own: it created it
            self.kube.kubectl("delete", "namespace", self.baseline_namespace, "--ignore-not-found", "--wait=true",
                              "--timeout=180s", timeout=240)
            notes.append(f"deleted namespace {self.baseline_namespace}")
        elif self.config.baseline:
            notes.append(f"namespace {self.baseline_namespace} existed before the run and stays")
        if self.state().get("created_namespace"):
            self.kube.kubectl("delete", "namespace", self.namespace, "--wait=true", "--timeout=180s", timeout=240)
            notes.append(f"deleted namespace {self.namespace}")
        else:
            notes.append(f"namespace {self.namespace} existed before the run and stays")
        return Outcome("teardown", True, f"removed the run's releases from namespace {self.namespace}", notes)


def _server_version(version_json: str) -> str:
    try:
        return "Kubernetes " + json.loads(version_json)["serverVersion"]["gitVersion"]
    except (ValueError, KeyError):
        return "server version unknown"
