"""The kubernetes-client waits, against a local server that speaks the API paths they read."""

import pytest

from runbook.core.errors import WaitTimeout
from runbook.targets.kube import Kube
from runbook.targets.kubewait import wait_nodes_ready, wait_rollout
from runbook.targets.tools import Toolbox
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

    from runbook.core.errors import GiveUp

    fake, client = api
    fake.deployments[("runbook", "foo")] = [
        deployment("foo", "runbook", updated=1, total=2, available=1, progressing=("False", "ProgressDeadlineExceeded"))]
    started = time.monotonic()
    with pytest.raises(GiveUp, match="exceeded its progress deadline.*has timed out progressing"):
        wait_rollout(client, "runbook", "foo", timeout=30, interval=0.05)
    assert time.monotonic() - started < 5


def test_every_read_has_its_own_timeout(api, monkeypatch):
    from kubernetes.client import AppsV1Api, CoreV1Api

    fake, client = api
    fake.node_states = [[node("runbook-control-plane")]]
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook")]
    timeouts = []
    for cls, method in ((CoreV1Api, "list_node"), (AppsV1Api, "read_namespaced_deployment_status")):
        original = getattr(cls, method)

        def spy(self, *args, _original=original, **kwargs):
            timeouts.append(kwargs.get("_request_timeout"))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(cls, method, spy)
    wait_nodes_ready(client, expected=1, timeout=5, interval=0.01)
    wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01)
    assert timeouts == [10, 10]  # a hung API server costs one read, not the whole wait


def test_an_api_server_hiccup_is_waited_through(api):
    fake, client = api
    fake.node_states = [[node("runbook-control-plane")]]
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook")]
    fake.failing = {r"/api/v1/nodes": 2, r"/apis/apps/v1/namespaces/runbook/deployments/foo/status": 2}
    assert wait_nodes_ready(client, expected=1, timeout=5, interval=0.01) == ["runbook-control-plane"]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 2
    assert fake.failing == {r"/api/v1/nodes": 0, r"/apis/apps/v1/namespaces/runbook/deployments/foo/status": 0}


def test_what_a_node_wait_saw_word_for_word(api):
    fake, client = api
    fake.node_states = [[]]
    with pytest.raises(WaitTimeout, match=r"0/2 nodes: no nodes"):
        wait_nodes_ready(client, expected=2, timeout=0.2, interval=0.05)
    fake.node_states = [[node("b", "False"), node("a")]]
    with pytest.raises(WaitTimeout, match=r"2/2 nodes: a Ready=True, b Ready=False"):
        wait_nodes_ready(client, expected=2, timeout=0.2, interval=0.05)
    fake.node_states = [[node("a"), node("b"), node("c")]]  # more than expected, all Ready: done
    assert wait_nodes_ready(client, expected=2, timeout=1, interval=0.05) == ["a", "b", "c"]


def test_the_wait_polls_at_its_interval(api):
    fake, client = api
    fake.deployments[("runbook", "foo")] = [deployment("foo", "runbook", available=0)]
    with pytest.raises(WaitTimeout):
        wait_rollout(client, "runbook", "foo", timeout=0.6, interval=0.05)
    assert 6 <= sum("/deployments/foo" in r for r in fake.requests) <= 14  # not wait_for's own 0.5 s, nor POLL_S
    fake.node_states = [[node("a", "False")]]
    with pytest.raises(WaitTimeout):
        wait_nodes_ready(client, expected=1, timeout=0.6, interval=0.05)
    assert 6 <= sum(r.startswith("/api/v1/nodes") for r in fake.requests) <= 14


def test_a_healthy_progressing_condition_does_not_stop_the_wait(api):
    fake, client = api
    fake.deployments[("runbook", "foo")] = [
        deployment("foo", "runbook", updated=1, total=2, available=1, progressing=("True", "ReplicaSetUpdated")),
        deployment("foo", "runbook", progressing=("True", "NewReplicaSetAvailable")),
    ]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 2


@pytest.mark.parametrize(("change", "reads"), [
    ({"generation": 1, "observed": None}, 2),  # the controller has not seen the Deployment yet
    ({"generation": None, "observed": None}, 1),  # no generation at all: nothing to wait for
])
def test_a_generation_not_yet_observed_is_waited_for(api, change, reads):
    fake, client = api
    first = deployment("foo", "runbook")
    if change["generation"] is None:
        del first["metadata"]["generation"]
    else:
        first["metadata"]["generation"] = change["generation"]
    del first["status"]["observedGeneration"]
    fake.deployments[("runbook", "foo")] = [first, deployment("foo", "runbook")]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 2
    assert sum("/deployments/foo" in r for r in fake.requests) == reads


def test_a_deployment_with_no_replicas_in_spec_waits_for_one_and_none_updated_is_not_done(api):
    fake, client = api
    first = deployment("foo", "runbook", updated=0, total=1, available=1)
    del first["status"]["updatedReplicas"]  # the API leaves out a zero
    second = deployment("foo", "runbook", updated=1, total=1, available=1)
    for state in (first, second):
        del state["spec"]["replicas"]
    fake.deployments[("runbook", "foo")] = [first, second]
    assert wait_rollout(client, "runbook", "foo", timeout=5, interval=0.01) == 1
    assert sum("/deployments/foo" in r for r in fake.requests) == 2


def test_a_node_without_status_is_not_ready(api):
    fake, client = api
    bare = node("runbook-worker")
    del bare["status"]
    fake.node_states = [[node("runbook-control-plane"), bare]]
    with pytest.raises(WaitTimeout, match="runbook-worker Ready=None"):
        wait_nodes_ready(client, expected=2, timeout=0.2, interval=0.05)
