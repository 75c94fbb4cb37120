import pytest

from runbook.config import STAGES, RunConfig, parameters_for, parse_duration
from runbook.errors import ConfigError


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
        ("rounds", 1, "between 2 and 20"),
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
