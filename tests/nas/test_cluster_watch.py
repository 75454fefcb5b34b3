"""The plain-Python half of running on a cluster (``nas.search.cluster``), without Ray: addresses,
tokens, which nodes can run a trial, and when to stop waiting for one."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from nas.search.cluster import (
    ClusterError,
    NodeWatch,
    can_host,
    check_reachable,
    node_lost,
    probe,
    ray_demand,
    split_address,
    token_source,
)


def _node(alive: bool = True, port: int = 1, **resources: float) -> dict:
    return {"NodeID": "n1", "Alive": alive, "Resources": resources,
            "NodeManagerAddress": "127.0.0.1", "NodeManagerPort": port}


def test_addresses() -> None:
    assert split_address("10.0.0.5:6379") == ("10.0.0.5", 6379)
    assert split_address("[::1]:6379") == ("::1", 6379)
    for bad in ("10.0.0.5", "host:", ":6379", "host:port", "host:70000"):
        with pytest.raises(ClusterError, match="is not HOST:PORT"):
            split_address(bad)


def test_probe_and_check_reachable() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert probe("127.0.0.1", port) is None
        check_reachable(f"127.0.0.1:{port}", "auto")
    assert probe("127.0.0.1", port) == "connection refused"
    with pytest.raises(ClusterError) as info:
        check_reachable(f"127.0.0.1:{port}", "auto")
    assert str(info.value).startswith(f"cannot reach a Ray cluster at 127.0.0.1:{port} (auto "
                                      f"resolved to 127.0.0.1:{port}): TCP connection to port")
    assert probe("no-such-host.invalid", 80) == "host 'no-such-host.invalid' not found"


def test_token_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nas.search.cluster.DEFAULT_TOKEN_FILE", tmp_path / "auth_token")
    assert token_source({}) is None
    (tmp_path / "auth_token").write_text("secret\n")
    assert token_source({}) == str(tmp_path / "auth_token")
    assert token_source({"RAY_AUTH_TOKEN": "x"}) == "RAY_AUTH_TOKEN"
    named = tmp_path / "named"
    assert token_source({"RAY_AUTH_TOKEN_PATH": str(named)}) is None  # named, but missing
    named.write_text("t")
    assert token_source({"RAY_AUTH_TOKEN_PATH": str(named)}) == str(named)


def test_which_nodes_can_run_a_trial() -> None:
    demand = ray_demand({"cpu": 2.0, "gpu": 1.0, "accelerator_type:V100": 0.001})
    assert demand == {"CPU": 2.0, "GPU": 1.0, "accelerator_type:V100": 0.001}
    v100 = _node(CPU=8, GPU=1, **{"accelerator_type:V100": 1})
    assert can_host(v100, demand)
    assert not can_host({**v100, "Alive": False}, demand)
    assert not can_host(_node(CPU=8, GPU=1, **{"accelerator_type:A100": 1}), demand)
    assert not can_host(_node(CPU=1, GPU=1, **{"accelerator_type:V100": 1}), demand)
    assert not can_host(_node(CPU=0), {"CPU": 2.0})  # a head started with --num-cpus 0


def test_a_node_is_lost_when_dead_or_its_raylet_refuses() -> None:
    with socket.socket() as raylet:
        raylet.bind(("127.0.0.1", 0))
        raylet.listen()
        port = raylet.getsockname()[1]
        assert not node_lost(_node(port=port))
        assert node_lost(_node(alive=False, port=port))
        assert node_lost(None)  # no longer listed
    assert node_lost(_node(port=port))  # Ray still lists it alive, but its raylet is gone


def test_the_watch_stops_waiting_after_the_timeout() -> None:
    clock = {"now": 100.0}
    watch = NodeWatch({"CPU": 2.0}, timeout=30.0, address="10.0.0.5:6379",
                      clock=lambda: clock["now"])
    head, worker = _node(CPU=0), _node(CPU=2)
    assert watch.update([head, worker]) is None and watch.waiting_s == 0.0
    clock["now"] += 10
    assert watch.update([head, {**worker, "Alive": False}]) is None  # the worker is lost
    clock["now"] += 29
    assert watch.update([head]) is None and watch.waiting_s == 29
    clock["now"] += 2
    assert watch.update([head]) == (
        "no node of the Ray cluster at 10.0.0.5:6379 can run a trial (2 CPU) and none came "
        "back within --node-timeout 30 s (1 node alive); finished candidates are saved: add "
        "a node and run the same command again")
    assert watch.update([head, _node(CPU=4)]) is None and watch.waiting_s == 0.0  # one is back
