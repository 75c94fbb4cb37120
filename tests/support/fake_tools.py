"""Stand-ins for docker, kind, helm and kubectl, for rehearsing the cluster path without a cluster.

Each is a small Python script put first on PATH. It appends its argv to a call log
and answers the way the real tool does for the calls the runbook makes. "kind create
cluster" writes a kubeconfig that points at a FakeKube server and starts the local
ingress on the ingress port as a stand-in for Traefik behind the kind port mapping;
"kind delete cluster" stops it. Nothing here is, or claims to be, Kubernetes.

The stand-ins keep the state the stages must create, so that a rehearsal proves they
did their work rather than that they were called: the IngressRoute CRD exists only once
Traefik's release is installed (an echo release installed before it fails, as Helm
would), and "Traefik" routes a host only while a release that declares it (its values
file, or --set-string ingressRoute.host) is installed; any other host gets 404. "Traefik"
labels each route's requests in its metrics as Traefik labels the release's service.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

SCRIPT = r'''#!{python}
import json, os, re, signal, subprocess, sys
from pathlib import Path

TOOL = {tool!r}
STATE = Path(os.environ["FAKE_TOOLS_STATE"])
args = sys.argv[1:]
with open(STATE / "calls.log", "a") as log:
    log.write(json.dumps([TOOL, *args]) + "\n")
failing = os.environ.get("FAKE_TOOLS_FAIL", "")
if failing and " ".join([TOOL, *args]).startswith(failing):
    sys.stderr.write(f"Error: {{TOOL}} failed on purpose: {{' '.join(args)}}\n")
    sys.exit(1)

def routes():
    path = STATE / "routes.json"
    return json.loads(path.read_text()) if path.exists() else {{}}

def route_args():
    """Routes, each labelled as Traefik v3 labels a single-service IngressRoute route (the echo chart's, named after
    the release): <namespace>-<IngressRoute>-<first 10 bytes of sha256(match) in hex>@kubernetescrd."""
    import hashlib
    table = routes()
    def label(key, host):
        digest = hashlib.sha256(("Host(`" + host + "`)").encode()).hexdigest()[:20]
        return key.replace("/", "-") + "-" + digest + "@kubernetescrd"
    return ([f"--route={{host}}={{text}}" for host, text in table.values()]
            + [f"--label={{host}}={{label(key, host)}}" for key, (host, text) in table.items()])

def start_traefik(port):
    ingress = subprocess.Popen([{python!r}, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{{port}}", *route_args()],
                               start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ingress.pid

def restart_traefik():
    """A new route set: Traefik reloads; the stand-in restarts with it (when the port mapping runs one)."""
    cluster = STATE / "cluster"
    if cluster.exists() and int(cluster.read_text() or 0):
        os.kill(int(cluster.read_text()), signal.SIGTERM)
        import socket, time
        for _ in range(100):  # until the old one has let go of the port
            try:
                socket.create_connection(("127.0.0.1", int(os.environ["FAKE_INGRESS_PORT"])), timeout=0.2).close()
                time.sleep(0.05)
            except OSError:
                break
        cluster.write_text(str(start_traefik(os.environ["FAKE_INGRESS_PORT"])))

def option(name, default=""):
    return args[args.index(name) + 1] if name in args else default

def namespaces():
    path = STATE / "namespaces"
    return set(path.read_text().split()) if path.exists() else set()

def kubeconfig(path):
    Path(path).write_text(json.dumps({{
        "apiVersion": "v1", "kind": "Config", "current-context": "kind-runbook",
        "clusters": [{{"name": "fake", "cluster": {{"server": os.environ["FAKE_KUBE_URL"]}}}}],
        "users": [{{"name": "fake", "user": {{"token": "fake"}}}}],
        "contexts": [{{"name": "kind-runbook", "context": {{"cluster": "fake", "user": "fake"}}}}]}}))

if TOOL == "docker":
    print("28.2.2")
elif TOOL == "kind":
    if args[:1] == ["version"]:
        print("kind v0.33.0 go1.25.1 linux/amd64")
    elif args[:2] == ["get", "clusters"]:
        if (STATE / "cluster").exists():
            print("runbook")
    elif args[:2] == ["create", "cluster"]:
        kubeconfig(args[args.index("--kubeconfig") + 1])
        config = Path(args[args.index("--config") + 1]).read_text()
        (STATE / "kind-config.yaml").write_text(config)
        pid = 0
        if "extraPortMappings" in config:  # the port mapping: "Traefik" answers on the host port
            pid = start_traefik(os.environ["FAKE_INGRESS_PORT"])
        (STATE / "cluster").write_text(str(pid))
    elif args[:2] == ["delete", "cluster"]:
        pid = int((STATE / "cluster").read_text())
        if pid:
            os.kill(pid, signal.SIGTERM)
        (STATE / "cluster").unlink()
    elif args[:2] == ["export", "logs"]:
        Path(args[2]).mkdir(parents=True, exist_ok=True)
        (Path(args[2]) / "kind-version.txt").write_text("kind v0.33.0\n")
elif TOOL == "helm":
    if args[:1] == ["version"]:
        print("v4.1.4")
    elif args[:1] == ["list"]:
        print("NAME\tNAMESPACE\nfoo\trunbook")
    elif args[:2] == ["upgrade", "--install"]:
        release, namespace = args[2], option("--namespace")
        if release == "traefik":
            (STATE / "crd").write_text("ingressroutes.traefik.io")
        elif release == "metrics-server":
            (STATE / "metrics-server").write_text(option("--version"))
        else:
            if not (STATE / "crd").exists():
                sys.stderr.write('Error: unable to build kubernetes objects: no matches for kind "IngressRoute"\n')
                sys.exit(1)
            import yaml
            values = yaml.safe_load(Path(option("--values")).read_text())
            host = values["ingressRoute"]["host"]
            for i, word in enumerate(args):
                if word == "--set-string" and args[i + 1].startswith("ingressRoute.host="):
                    host = args[i + 1].split("=", 1)[1]
            table = routes()
            table[f"{{namespace}}/{{release}}"] = [host, values["echo"]["text"]]
            (STATE / "routes.json").write_text(json.dumps(table))
            restart_traefik()
    elif args[:1] == ["uninstall"]:
        table = routes()
        if table.pop(f"{{option('--namespace')}}/{{args[1]}}", None) is not None:
            (STATE / "routes.json").write_text(json.dumps(table))
            restart_traefik()
elif TOOL == "kubectl":
    call = list(args)  # the call without the kubeconfig and context every call carries
    for flag in ("--kubeconfig", "--context"):
        if flag in call:
            del call[call.index(flag):call.index(flag) + 2]
    pods_file = STATE / "locust-pods.json"
    locust_pods = json.loads(pods_file.read_text()) if pods_file.exists() else {{}}
    def pod_out(name):
        return STATE / "pods" / name / "out"
    if call[:1] == ["apply"] and "-f" in call and "runbook-locust" in Path(call[call.index("-f") + 1]).read_text():
        # Locust's pods, run as local processes from the very container commands the runbook applied:
        # /out and /locust are folders here, the cluster's names of Traefik and the master are 127.0.0.1.
        import shutil, socket
        items = json.loads(Path(call[call.index("-f") + 1]).read_text())["items"]
        (STATE / "locust").mkdir(exist_ok=True)
        for item in items:
            if item["kind"] == "ConfigMap":
                (STATE / "locust" / "locustfile.py").write_text(item["data"]["locustfile.py"])
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            master_port = str(probe.getsockname()[1])
        for item in items:
            if item["kind"] != "Job":
                continue
            container = item["spec"]["template"]["spec"]["containers"][0]
            for index in range(item["spec"]["parallelism"]):
                name = f"{{item['metadata']['name']}}-{{index}}-fake"
                out = pod_out(name)
                out.mkdir(parents=True, exist_ok=True)
                script = container["command"][2].replace("/out", str(out)).replace("/locust/", str(STATE / "locust") + "/")
                script = script.replace("locust -f", {python!r} + " -m locust -f", 1).replace("5557", master_port)
                script = script.replace("--master-host runbook-locust-master", "--master-host 127.0.0.1")
                script = re.sub(r"--host http://traefik[^ ]*", "--host http://127.0.0.1:" + os.environ["FAKE_INGRESS_PORT"], script)
                env = {{**os.environ, **{{e["name"]: e["value"].replace("/out", str(out)) for e in container["env"]}}}}
                pid = subprocess.Popen(["sh", "-c", script], env=env, cwd=out, start_new_session=True,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
                locust_pods[name] = {{"component": item["metadata"]["labels"]["app.kubernetes.io/component"], "pid": pid}}
        pods_file.write_text(json.dumps(locust_pods))
        print("job.batch/runbook-locust-master created")
    elif call[:2] == ["get", "pods"] and any("component=" in a for a in call):
        wanted = next(a for a in call if "component=" in a).split("component=")[1].split(",")[0]
        print(json.dumps({{"items": [{{"metadata": {{"name": n}}}} for n, p in locust_pods.items() if p["component"] == wanted]}}))
    elif call[:1] == ["exec"] and call[3] in locust_pods:
        command = call[call.index("--") + 1:]
        path = Path(command[-1].replace("/out", str(pod_out(call[3]))))
        if command[0] == "touch":
            path.touch()
        elif path.exists():
            print(path.read_text(), end="")
        else:
            sys.exit(1)
    elif call[:1] == ["cp"]:
        import shutil
        shutil.copytree(pod_out(call[1].split("/")[1].split(":")[0]), call[2])
    elif call[:1] == ["delete"] and "job,service,configmap" in call:
        for pod in locust_pods.values():
            try:
                os.killpg(pod["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
        pods_file.write_text("{{}}")
    else:
        call = None
    if call is not None:  # one of Locust's calls above: answered
        sys.exit(0)
    if "port-forward" in args:  # listen on the local port for as long as the forward lives
        local = args[-1].split(":")[0]
        os.execv({python!r}, [{python!r}, "-m", "runbook.targets.standin", f"--listen=127.0.0.1:{{local}}", *route_args()])
    if args[:1] == ["version"] or "version" in args and "--client" in args:
        print(json.dumps({{"clientVersion": {{"gitVersion": "v1.35.1"}}}}))
    elif "apiservice" in args:
        pass  # no metrics API in a stand-in cluster
    elif "crd" in args:
        if (STATE / "crd").exists():
            print("customresourcedefinition.apiextensions.k8s.io/ingressroutes.traefik.io")
    elif "namespace" in args and ("get" in args or "create" in args or "delete" in args):
        name = args[args.index("namespace") + 1]
        known = namespaces()
        if "get" in args:
            print(f"namespace/{{name}}" if name in known else "")
        else:
            known = known | {{name}} if "create" in args else known - {{name}}
            (STATE / "namespaces").write_text("\n".join(sorted(known)))
    elif "pods" in args and "json" in args:
        print(json.dumps({{"items": []}}))
    elif "can-i" in args:
        print(os.environ.get("FAKE_CAN_I", "yes"))
    else:
        print(f"kubectl {{' '.join(args)}}: stand-in output")
'''


def install_fake_tools(folder: Path, state: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    for tool in ("docker", "kind", "helm", "kubectl"):
        path = folder / tool
        path.write_text(SCRIPT.format(python=sys.executable, tool=tool))
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return folder


def calls(state: Path) -> list[list[str]]:
    log = state / "calls.log"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


def environment(bin_dir: Path, state: Path, kube_url: str, port: int, **extra: str) -> dict[str, str]:
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "FAKE_TOOLS_STATE": str(state),
            "FAKE_KUBE_URL": kube_url, "FAKE_INGRESS_PORT": str(port), **extra}
