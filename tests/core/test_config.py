import os
from pathlib import Path

import pytest

from runbook.core import config as config_module
from runbook.core.config import STAGES, RunConfig, environment_without_secrets, parameters_for, parse_duration, project_root
from runbook.core.errors import ConfigError


def test_defaults_are_the_seed_profile():
    config = RunConfig.from_parameters()
    assert (config.users, config.spawn_rate, config.run_time) == (100, 10.0, 30)
    assert (config.wait_min, config.wait_max) == (0.0, 1.0)
    assert (config.ingress_host, config.ingress_port) == ("127.0.0.1", 8080)
    assert config.services == ("foo", "bar")
    assert config.stages == STAGES
    assert config == RunConfig()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("30", 30), (45, 45), ("2m", 120), ("1m30s", 90), ("1h", 3600), (" 10s ", 10)],
)
def test_durations(text, seconds):
    assert parse_duration("run_time", text) == seconds


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("users", -5, "between 1"),
        ("users", "many", "whole number"),
        ("users", 2.5, "whole number"),
        ("users", True, "whole number"),
        ("spawn_rate", 0, "greater than 0"),
        ("spawn_rate", "fast", "a number"),
        ("run_time", "abc", "duration"),
        ("run_time", "0s", "at least 1 second"),
        ("run_time", "-5s", "duration"),
        ("target", "mars", "auto, local, kind, kubeconfig"),
        ("ingress_port", 70000, "between 1 and 65535"),
        ("ingress_host", "10.0.0.1", "loopback"),
        ("ingress_host", "example.com", "IP address"),
        ("ingress_mode", "magic", "nodeport"),
        ("services", "Foo", "DNS label"),
        ("services", "foo,foo", "twice"),
        ("services", "", "non-empty"),
        ("keep_cluster", "perhaps", "true or false"),
        ("cluster_name", "My_Cluster", "DNS label"),
        ("wait_min", -0.5, "at least 0"),
        ("wait_max", float("nan"), "at least 0"),
        ("spawn_rate", float("nan"), "greater than 0"),
        ("request_timeout", float("inf"), "at most 300"),
        ("preflight_timeout", 0, "greater than 0"),
        ("preflight_timeout", "soon", "expected a number"),
        ("metrics_server", "maybe", "true or false"),
        ("inject_delay", "foo=0", "greater than 0"),
        ("inject_delay", "foo", "SERVICE=MS"),
        ("baseline", "--upload-pack=evil", "git commit"),
        ("slo", "", "must not be empty"),
    ],
)
def test_bad_values_name_themselves(name, value, message):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_parameters(**{name: value})
    assert caught.value.name == name
    assert repr(value) in str(caught.value)
    assert message in str(caught.value)


def test_wait_max_below_wait_min():
    with pytest.raises(ConfigError, match="wait_max=0.2: must not be less than wait_min=0.5"):
        RunConfig.from_parameters(wait_min=0.5, wait_max=0.2)


def test_unknown_stage_and_order():
    with pytest.raises(ConfigError, match="'deploy_all'.*unknown stage"):
        RunConfig.from_parameters(stages="provision,deploy_all")
    with pytest.raises(ConfigError, match="pipeline order"):
        RunConfig.from_parameters(stages="report,load_test")
    assert RunConfig.from_parameters(stages="load_test,report").stages == ("load_test", "report")


def test_unknown_parameter_is_rejected():
    with pytest.raises(ConfigError, match="usres=.*unknown parameter"):
        RunConfig.from_parameters(usres=10)


def test_round_trip_through_parameters():
    config = RunConfig.from_parameters(users="7", spawn_rate="2.5", run_time="1m", services="foo", keep_cluster="true")
    assert RunConfig.from_parameters(**config.to_parameters()) == config
    assert config.to_parameters()["run_time"] == "60s"
    assert parameters_for(config, {"users": 100, "run_time": "30s", "not_a_field": 1}) == {"users": 7, "run_time": "60s"}


def test_config_is_immutable():
    config = RunConfig()
    with pytest.raises(AttributeError):
        config.users = 5  # type: ignore[misc]
    assert config.replace(users=5).users == 5 and config.users == 100


@pytest.mark.parametrize(("params", "name", "message"), [
    (dict(users=0), 'users', 'users=0: must be between 1 and 100000'),
    (dict(users=100001), 'users', 'users=100001: must be between 1 and 100000'),
    (dict(users=None), 'users', 'users=None: expected a whole number'),
    (dict(users='7.5'), 'users', "users='7.5': expected a whole number"),
    (dict(users=True), 'users', 'users=True: expected a whole number'),
    (dict(spawn_rate=0), 'spawn_rate', 'spawn_rate=0: must be greater than 0 and at most 10000'),
    (dict(spawn_rate=10000.5), 'spawn_rate', 'spawn_rate=10000.5: must be greater than 0 and at most 10000'),
    (dict(spawn_rate=None), 'spawn_rate', 'spawn_rate=None: expected a number'),
    (dict(spawn_rate=False), 'spawn_rate', 'spawn_rate=False: expected a number'),
    (dict(run_time=True), 'run_time', 'run_time=True: expected a duration such as 30s, 2m or 1m30s'),
    (dict(run_time=30.5), 'run_time', 'run_time=30.5: expected a duration such as 30s, 2m or 1m30s'),
    (dict(run_time=''), 'run_time', "run_time='': expected a duration such as 30s, 2m or 1m30s"),
    (dict(run_time=0), 'run_time', 'run_time=0: must be at least 1 second'),
    (dict(run_time='1x'), 'run_time', "run_time='1x': expected a duration such as 30s, 2m or 1m30s"),
    (dict(wait_min=3600.5), 'wait_min', 'wait_min=3600.5: must be at least 0 and at most 3600'),
    (dict(wait_max=-1), 'wait_max', 'wait_max=-1: must be at least 0 and at most 3600'),
    (dict(request_timeout=0), 'request_timeout', 'request_timeout=0: must be greater than 0 and at most 300'),
    (dict(request_timeout=300.5), 'request_timeout', 'request_timeout=300.5: must be greater than 0 and at most 300'),
    (dict(preflight_timeout=600.5), 'preflight_timeout', 'preflight_timeout=600.5: must be greater than 0 and at most 600'),
    (dict(ingress_host='127.0.0.1.5'), 'ingress_host', "ingress_host='127.0.0.1.5': expected an IP address such as 127.0.0.1"),
    (dict(ingress_host='192.168.1.1'), 'ingress_host', "ingress_host='192.168.1.1': load and test traffic goes to a loopback address only"),
    (dict(ingress_port=0), 'ingress_port', 'ingress_port=0: must be between 1 and 65535'),
    (dict(ingress_port='http'), 'ingress_port', "ingress_port='http': expected a whole number"),
    (dict(ingress_mode='NodePort'), 'ingress_mode', "ingress_mode='NodePort': must be one of nodeport, port-forward"),
    (dict(target='Local'), 'target', "target='Local': must be one of auto, local, kind, kubeconfig"),
    (dict(services=7), 'services', 'services=7: expected a comma-separated list'),
    (dict(services='foo,,bar'), 'services', "services='foo,,bar': expected a non-empty comma-separated list"),
    (dict(services=['foo', 'foo']), 'services', "services=['foo', 'foo']: lists a name twice"),
    (dict(services="a" * 41), 'services', 'services={!r}: a service name must be a lowercase DNS label of at most 40 characters'.format("a" * 41)),
    (dict(services='-foo'), 'services', "services='-foo': a service name must be a lowercase DNS label of at most 40 characters"),
    (dict(stages='deploy,provision'), 'stages', "stages='deploy,provision': stages must be in pipeline order: provision, ingress, deploy, verify, load_test, report, publish, teardown"),
    (dict(stages='lunch'), 'stages', "stages='lunch': unknown stage; the stages are provision, ingress, deploy, verify, load_test, report, publish, teardown"),
    (dict(stages=''), 'stages', "stages='': expected a non-empty comma-separated list"),
    (dict(keep_cluster='Y'), 'keep_cluster', "keep_cluster='Y': expected true or false"),
    (dict(keep_cluster=None), 'keep_cluster', 'keep_cluster=None: expected true or false'),
    (dict(require_publish='nah'), 'require_publish', "require_publish='nah': expected true or false"),
    (dict(require_baseline=2), 'require_baseline', 'require_baseline=2: expected true or false'),
    (dict(metrics_server='on'), 'metrics_server', "metrics_server='on': expected true or false"),
    (dict(cluster_name="a" * 64), 'cluster_name', "cluster_name={!r}: expected a lowercase DNS label (a-z, 0-9, '-')".format("a" * 64)),
    (dict(cluster_name='-kind'), 'cluster_name', "cluster_name='-kind': expected a lowercase DNS label (a-z, 0-9, '-')"),
    (dict(namespace='Team_A'), 'namespace', "namespace='Team_A': expected a lowercase DNS label (a-z, 0-9, '-')"),
    (dict(namespace="a" * 64), 'namespace', "namespace={!r}: expected a lowercase DNS label (a-z, 0-9, '-')".format("a" * 64)),
    (dict(pr=-1), 'pr', 'pr=-1: must be between 0 and 1000000000'),
    (dict(pr=10**9 + 1), 'pr', 'pr=1000000001: must be between 0 and 1000000000'),
    (dict(rounds=3), 'rounds', "rounds=3: unknown parameter; known: assets_branch, baseline, cluster_name, context, "
     "ingress_host, ingress_mode, ingress_port, inject_delay, keep_cluster, load_generator, metrics_server, namespace, pr, "
     "preflight_timeout, processes, request_timeout, require_baseline, require_publish, run_dir, run_time, services, "
     "slo, spawn_rate, stages, target, users, wait_max, wait_min, workers"),
    (dict(assets_branch='a..b'), 'assets_branch', "assets_branch='a..b': expected a branch name such as runbook-assets"),
    (dict(assets_branch='x.'), 'assets_branch', "assets_branch='x.': expected a branch name such as runbook-assets"),
    (dict(assets_branch='x/'), 'assets_branch', "assets_branch='x/': expected a branch name such as runbook-assets"),
    (dict(assets_branch='x.lock'), 'assets_branch', "assets_branch='x.lock': expected a branch name such as runbook-assets"),
    (dict(assets_branch='a//b'), 'assets_branch', "assets_branch='a//b': expected a branch name such as runbook-assets"),
    (dict(assets_branch='-x'), 'assets_branch', "assets_branch='-x': expected a branch name such as runbook-assets"),
    (dict(assets_branch="a" * 101), 'assets_branch', 'assets_branch={!r}: expected a branch name such as runbook-assets'.format("a" * 101)),
    (dict(assets_branch='a b'), 'assets_branch', "assets_branch='a b': expected a branch name such as runbook-assets"),
    (dict(slo='   '), 'slo', "slo='   ': must not be empty"),
    (dict(slo=None), 'slo', 'slo=None: must not be empty'),
    (dict(baseline='HEAD 1'), 'baseline', "baseline='HEAD 1': expected a git commit, branch or tag such as HEAD^1 or origin/main"),
    (dict(baseline='-x'), 'baseline', "baseline='-x': expected a git commit, branch or tag such as HEAD^1 or origin/main"),
    (dict(inject_delay='foo=5', target='kind'), 'inject_delay', "inject_delay='foo=5': only the local target can delay its answers (target is kind); it is a sensitivity check of the comparison, not a property of a cluster"),
    (dict(inject_delay='foo=5', target='kubeconfig'), 'inject_delay', "inject_delay='foo=5': only the local target can delay its answers (target is kubeconfig); it is a sensitivity check of the comparison, not a property of a cluster"),
    (dict(inject_delay='baz=5'), 'inject_delay', "inject_delay='baz=5': expected SERVICE=MS with SERVICE one of foo, bar"),
    (dict(inject_delay='foo=abc'), 'inject_delay', "inject_delay='foo=abc': the milliseconds expected a number"),
    (dict(inject_delay='foo=10001'), 'inject_delay', "inject_delay='foo=10001': the milliseconds must be greater than 0 and at most 10000"),
    (dict(inject_delay='foo=5,bar'), 'inject_delay', "inject_delay='bar': expected SERVICE=MS with SERVICE one of foo, bar"),
    (dict(inject_delay='foo=5=3'), 'inject_delay', "inject_delay='foo=5=3': the milliseconds expected a number"),
    (dict(baseline="HEAD", run_time=7), 'run_time', "run_time=7: with --baseline at least 8s: the comparison "
     "resamples blocks of 1 s and needs at least 8 of them"),
    (dict(inject_delay='foo=5'), 'inject_delay', "inject_delay='foo=5': it calibrates the comparison with the base: give "
     "--baseline too (without one it would only slow the service down, and nothing would judge it)"),
    (dict(usres=10), 'usres', "usres=10: unknown parameter; known: assets_branch, baseline, cluster_name, context, "
     "ingress_host, ingress_mode, ingress_port, inject_delay, keep_cluster, load_generator, metrics_server, namespace, pr, "
     "preflight_timeout, processes, request_timeout, require_baseline, require_publish, run_dir, run_time, services, "
     "slo, spawn_rate, stages, target, users, wait_max, wait_min, workers"),
    (dict(wait_min=0.5, wait_max=0.2), 'wait_max', 'wait_max=0.2: must not be less than wait_min=0.5'),

])
def test_every_refusal_word_for_word(params, name, message):
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_parameters(**params)
    assert caught.value.name == name and str(caught.value) == message


def test_every_value_lands_in_its_own_field():
    given = dict(target="local", users="7", spawn_rate="2.5", run_time="1h1m1s", wait_min="0.25", wait_max=2,
                 request_timeout=3, preflight_timeout="1.5", ingress_host="::1", ingress_port="9090",
                 ingress_mode="port-forward", services=["api", "web"], stages=("load_test", "report"), keep_cluster="YES",
                 metrics_server="0", cluster_name="ci-7", context="kind-ci", namespace="team-a", pr="42",
                 require_publish="1", assets_branch="bot/assets.v2", slo=" mine.yaml ", baseline=" origin/main ",
                 require_baseline="True", inject_delay=" api=2.50 , web=1 ", run_dir="/tmp/elsewhere")
    config = RunConfig.from_parameters(**given)
    assert config == RunConfig(
        target="local", users=7, spawn_rate=2.5, run_time=3661, wait_min=0.25, wait_max=2.0, request_timeout=3.0,
        preflight_timeout=1.5, ingress_host="::1", ingress_port=9090, ingress_mode="port-forward", services=("api", "web"),
        stages=("load_test", "report"), keep_cluster=True, metrics_server=False, cluster_name="ci-7", context="kind-ci",
        namespace="team-a", pr=42, require_publish=True, assets_branch="bot/assets.v2", slo="mine.yaml",
        baseline="origin/main", require_baseline=True, inject_delay="api=2.5,web=1", run_dir="/tmp/elsewhere")
    assert config.delays == {"api": 2.5, "web": 1.0} and RunConfig().delays == {}
    assert config.ingress_url == "http://::1:9090"
    assert config.slo_path == project_root() / "mine.yaml" and config.run_path == Path("/tmp/elsewhere")
    assert RunConfig.from_parameters(slo="/etc/slo.yaml", run_dir="runs/a").slo_path == Path("/etc/slo.yaml")
    assert RunConfig.from_parameters(run_dir="runs/a").run_path == project_root() / "runs" / "a"


@pytest.mark.parametrize(("params", "field", "value"), [
    (dict(users=1), "users", 1), (dict(users=100_000), "users", 100_000), (dict(users=7.0), "users", 7),
    (dict(spawn_rate=0.001), "spawn_rate", 0.001), (dict(spawn_rate=10_000), "spawn_rate", 10_000.0),
    (dict(run_time=30.0), "run_time", 30), (dict(run_time=1), "run_time", 1), (dict(run_time="2m"), "run_time", 120),
    (dict(wait_min=0, wait_max=0), "wait_max", 0.0), (dict(wait_min=3600, wait_max=3600), "wait_min", 3600.0),
    (dict(request_timeout=300), "request_timeout", 300.0), (dict(request_timeout=0.01), "request_timeout", 0.01),
    (dict(preflight_timeout=600), "preflight_timeout", 600.0),
    (dict(ingress_host="127.0.0.2"), "ingress_host", "127.0.0.2"), (dict(ingress_port=65535), "ingress_port", 65535),
    (dict(ingress_port=1), "ingress_port", 1),
    (dict(services=" foo , bar "), "services", ("foo", "bar")), (dict(services="a" * 40), "services", ("a" * 40,)),
    (dict(stages="teardown"), "stages", ("teardown",)),
    (dict(keep_cluster="no"), "keep_cluster", False), (dict(keep_cluster="False"), "keep_cluster", False),
    (dict(keep_cluster="true"), "keep_cluster", True), (dict(keep_cluster=True), "keep_cluster", True),
    (dict(keep_cluster="0"), "keep_cluster", False), (dict(keep_cluster="yes"), "keep_cluster", True),
    (dict(cluster_name="a" * 63), "cluster_name", "a" * 63), (dict(namespace="a" * 63), "namespace", "a" * 63),
    (dict(namespace=None), "namespace", ""), (dict(context=None), "context", ""),
    (dict(pr=0), "pr", 0), (dict(pr=10**9), "pr", 10**9),
    (dict(assets_branch="a" * 100), "assets_branch", "a" * 100), (dict(assets_branch="a.b/c_d-e"), "assets_branch", "a.b/c_d-e"),
    (dict(baseline=None), "baseline", ""), (dict(baseline="HEAD^1"), "baseline", "HEAD^1"),
    (dict(inject_delay=None), "inject_delay", ""), (dict(inject_delay="  "), "inject_delay", ""),
    (dict(inject_delay="foo=10000", baseline="HEAD"), "inject_delay", "foo=10000"),
    (dict(inject_delay="foo=5", target="auto", baseline="HEAD"), "inject_delay", "foo=5"),
    (dict(inject_delay="bar=0.5", target="local", baseline="HEAD"), "inject_delay", "bar=0.5"),
])
def test_values_at_their_bounds_are_accepted(params, field, value):
    assert getattr(RunConfig.from_parameters(**params), field) == value


def test_the_secret_variables_are_left_out_of_a_childs_environment(monkeypatch):
    given = {"GITHUB_TOKEN": "t1", "GH_TOKEN": "t2", "GITHUB_REPOSITORY": "octo/app", "PATH": "/bin"}
    assert environment_without_secrets(given) == {"GITHUB_REPOSITORY": "octo/app", "PATH": "/bin"}
    assert given["GITHUB_TOKEN"] == "t1"  # a copy: the mapping given is not changed
    monkeypatch.setenv("GH_TOKEN", "t3")
    monkeypatch.setenv("RUNBOOK_SEEN", "1")
    inherited = environment_without_secrets()
    assert "GH_TOKEN" not in inherited and inherited["RUNBOOK_SEEN"] == "1" and os.environ["GH_TOKEN"] == "t3"


def test_the_project_root_is_the_checkout_and_says_how_to_install_when_it_is_not(monkeypatch, tmp_path):
    root = project_root()
    assert (root / "notebooks").is_dir() and (root / "k8s").is_dir() and Path(config_module.__file__).is_relative_to(root)
    monkeypatch.setattr(config_module, "__file__", str(tmp_path / "site-packages" / "runbook" / "core" / "config.py"))
    with pytest.raises(ConfigError) as caught:
        project_root()
    assert caught.value.name == "project_root" and caught.value.value == str(tmp_path)
    assert caught.value.reason == ("no notebooks/ folder here; install the runbook with 'pip install -r requirements.txt' "
                                   "from its checkout")


def test_a_comparison_takes_the_shortest_run_it_can_judge():
    from runbook.core.config import COMPARISON_MIN_S, RunConfig

    assert RunConfig.from_parameters(baseline="HEAD", run_time=COMPARISON_MIN_S).run_time == COMPARISON_MIN_S
