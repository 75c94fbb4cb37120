"""The kubernetes-client waits, against a local server that speaks the API paths they read."""

import pytest

from runbook.errors import WaitTimeout
from runbook.kube import Kube
from runbook.kubewait import wait_nodes_ready, wait_rollout
from runbook.tools import Toolbox
from support.fake_kube import FakeKube, deployment, node


@pytest.fixture
def api(tmp_path):
    with FakeKube() as fake:
        kube = Kube(Toolbox(), kubeconfig=str(fake.write_kubeconfig(tmp_path / "kubeconfig")), context="kind-runbook")
        yield fake, kube.api_client()


def test_waits_until_every_node_is_ready(api):
    fake, client = api
    fake.node_states = [
        [node("runbook-control-plane", "False")],
        [node("runbook-control-plane"), node("runbook-worker", "False")],
        [node("runbook-control-plane"), node("runbook-worker")],
    ]
    assert wait_nodes_ready(client, expected=2, timeout=10, interval=0.01) == ["runbook-control-plane", "runbook-worker"]
    assert fake.requests.count("/api/v1/nodes?timeout=10s") + sum(r.startswith("/api/v1/nodes") for r in fake.requests) >= 3


def test_a_node_that_never_gets_ready_names_itself(api):
    fake, client = api
    fake.node_states = [[node("runbook-control-plane"), node("runbook-worker", "False")]]
    with pytest.raises(WaitTimeout) as caught:
        wait_nodes_ready(client, expected=2, timeout=0.5, interval=0.05)
    assert "waiting for 2 nodes to be Ready" in str(caught.value)
    assert "runbook-worker Ready=False" in str(caught.value)


def test_one_ready_node_is_not_two(api):
    fake, client = api
    fake.node_states = [[node("runbook-control-plane")]]
    with pytest.raises(WaitTimeout, match="1/2 nodes"):
        wait_nodes_ready(client, expected=2, timeout=0.3, interval=0.05)


def test_rollout_waits_for_the_new_generation_to_be_available(api):
    fake, client = api
    fake.deployments[("runbook", "foo")] = [
        deployment("foo", "runbook", generation=2, observed=1),
        deployment("foo", "runbook", generation=2, observed=2, updated=1, total=3, available=2),
        deployment("foo", "runbook", generation=2, observed=2, updated=2, total=2, available=2),
    ]
    assert wait_rollout(client, "runbook", "foo", timeout=10, interval=0.01) == 2
    assert sum("/deployments/foo" in r for r in fake.requests) == 3


def test_a_stuck_rollout_says_what_it_saw(api):
    fake, client = api
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook", updated=2, total=2, available=0)]
    with pytest.raises(WaitTimeout, match="deployment runbook/foo to roll out.*2/2 updated, 2 total, 0 available"):
        wait_rollout(client, "runbook", "foo", timeout=0.3, interval=0.05)


def test_a_missing_deployment_is_seen_as_not_found(api):
    _, client = api
    with pytest.raises(WaitTimeout, match=r"NotFoundException: \(404\)"):
        wait_rollout(client, "runbook", "nope", timeout=0.3, interval=0.05)


def test_an_hpa_managed_deployment_rolls_out_at_the_defaulted_count(api):
    fake, client = api
    # The chart renders no spec.replicas beside its HPA: the API server defaults it to 1.
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook", replicas=None, updated=1, total=1, available=1)]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 1


def test_old_replicas_still_terminating_are_waited_for(api):
    fake, client = api
    fake.deployments[("runbook", "foo")] = [
        deployment("foo", "runbook", updated=2, total=3, available=2),  # new ones ready, an old one terminating
        deployment("foo", "runbook", updated=2, total=2, available=2),
    ]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 2
    assert sum("/deployments/foo" in r for r in fake.requests) == 2
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook", updated=2, total=3, available=2)]
    with pytest.raises(WaitTimeout, match="2/2 updated, 3 total"):
        wait_rollout(client, "runbook", "foo", timeout=0.3, interval=0.05)


def test_a_rollout_past_its_progress_deadline_gives_up_at_once(api):
    import time

    from runbook.errors import GiveUp

    fake, client = api
    fake.deployments[("runbook", "foo")] = [
        deployment("foo", "runbook", updated=1, total=2, available=1, progressing=("False", "ProgressDeadlineExceeded"))]
    started = time.monotonic()
    with pytest.raises(GiveUp, match="exceeded its progress deadline.*has timed out progressing"):
        wait_rollout(client, "runbook", "foo", timeout=30, interval=0.05)
    assert time.monotonic() - started < 5
