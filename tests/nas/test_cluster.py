"""nas-search on a real two-node Ray cluster, started with the README's own commands.

The token is made on the head with the README's line; the head (0 CPUs) and a worker node are
separate ``ray start`` processes (``ray_nodes``), each in an empty home of its own like a fresh
machine, the worker given the token as the README says; the search runs as its own process in
another empty home, with the token given as the README says and without ``RAY_AUTH_MODE``.
It must run every trial on the worker node and record that node in its rows; when the worker
node is killed while a candidate trains, that candidate is recorded as ``failed`` with the
reason ``node lost`` (``--retries 0``) and the search finishes on a fresh worker node with
exactly ``--budget`` rows. Retries, a node that never comes back and the loss of the driver
are in ``bench/cluster.py`` (too slow for the suite on two cores).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from results.leaderboard import Leaderboard

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ray_nodes", Path(__file__).with_name("ray_nodes.py"))
assert _spec is not None and _spec.loader is not None
ray_nodes = importlib.util.module_from_spec(_spec)
sys.modules["ray_nodes"] = ray_nodes
_spec.loader.exec_module(ray_nodes)
NAS_SEARCH = Path(sys.executable).with_name("nas-search")


def readme_cluster_commands() -> list[str]:
    """The commands of the README's first cluster example: token, head, worker, search."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### On a Ray cluster"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block is not None
    lines = [line for line in block.group(1).splitlines() if line and not line.startswith("#")]
    assert len(lines) == 4 and lines[0] == "ray get-auth-token --generate"
    assert lines[1].startswith("RAY_AUTH_MODE=token ray start --head")
    assert "ray start --address HEAD_IP:6379" in lines[2] and "RAY_AUTH_TOKEN=TOKEN" in lines[2]
    assert "nas-search" in lines[3]
    return lines


def search_command(nodes, line: str, out: Path) -> tuple[list[str], dict[str, str]]:
    """The README's ``nas-search`` line for this cluster and ``out``: argv and environment
    (an empty home of its own: the driver finds no token but the one the line gives)."""
    env, words = ray_nodes.split_line(line)
    words = [nodes.fill(word) for word in words]
    words[words.index("--out") + 1] = str(out)
    assert words[0] == "nas-search" and "RAY_AUTH_MODE" not in env
    return [str(NAS_SEARCH), *words[1:]], driver_env(nodes, env)


def driver_env(nodes, env: dict[str, str] | None = None) -> dict[str, str]:
    return {**nodes.environment(env or {}, nodes.home()), "PYTHONPATH": str(REPO)}


def test_search_runs_on_the_worker_node_and_survives_its_loss(tmp_path, tiny_args):
    token_line, head_line, worker_line, search_line = readme_cluster_commands()
    with ray_nodes.RayNodes() as nodes:
        nodes.make_token(token_line)
        nodes.start(head_line)
        worker = nodes.start(worker_line)

        # The README's search: every trial on the worker node, recorded in its row.
        out = tmp_path / "try"
        argv, env = search_command(nodes, search_line, out)
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        rows = pd.read_parquet(out / "leaderboard.parquet")
        budget = int(argv[argv.index("--budget") + 1])
        assert len(rows) == budget and rows["arch_hash"].is_unique
        assert (rows["objective"] == "surrogate").all() and (rows["status"] == "ok").all()
        assert set(rows["node_id"]) == {worker.node_id}
        assert set(rows["host"]) == {socket.gethostname()}
        node = json.loads(rows["provenance_json"][0])["node"]
        assert node["node_id"] == worker.node_id and node["ip"] == nodes.address.split(":")[0]

        # The worker node dies while the second candidate trains (--retries 0).
        out = tmp_path / "lost"
        args = [*tiny_args, "--epochs", "6"]  # ~5 s of training per candidate
        argv = [str(NAS_SEARCH), "--budget", "3", "--retries", "0", "--address", nodes.address,
                "--out", str(out), *args]
        driver = subprocess.Popen(argv, cwd=tmp_path, env=env, start_new_session=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 240
            while len(_rows_so_far(out)) < 1:
                assert driver.poll() is None and time.monotonic() < deadline, \
                    driver.communicate()[0][-3000:]
                time.sleep(0.2)
            time.sleep(2.0)  # the second candidate is being timed or trained now
            assert len(_rows_so_far(out)) == 1
            nodes.kill(worker)
            fresh = nodes.start(worker_line)
            printed, _ = driver.communicate(timeout=240)
        finally:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
        assert driver.returncode == 0, printed[-3000:]
    rows = pd.read_parquet(out / "leaderboard.parquet").sort_values("trial_id")
    assert len(rows) == 3 and rows["arch_hash"].is_unique and rows["number"].is_unique
    assert rows["status"].tolist() == ["ok", "failed", "ok"]
    lost = rows.iloc[1]
    assert lost["failure_reason"] == "node lost" and lost["node_id"] == worker.node_id
    assert rows.iloc[0]["node_id"] == worker.node_id
    assert rows.iloc[2]["node_id"] == fresh.node_id != worker.node_id
    assert "Traceback" not in printed


def _rows_so_far(out: Path) -> list[dict]:
    try:
        return Leaderboard(out).rows()
    except Exception:  # noqa: BLE001 - the run folder is still being created
        return []


def test_cluster_launcher_example_is_valid_and_places_v100_trials():
    """``examples/cluster.yaml`` passes Ray's own config checks (as ``ray up`` fills and checks
    it), gives every node this machine's token and starts it with token authentication, and
    its GPU node type offers what a ``--hardware v100`` trial asks for."""
    import yaml
    from ray.autoscaler._private.util import prepare_config, validate_config

    from proxy_train.hardware import PROFILES

    config = prepare_config(yaml.safe_load((REPO / "examples" / "cluster.yaml").read_text()))
    validate_config(config)
    # The README's recipe: one token, made here, on every node; every node asks for it.
    assert config["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [line for line in config[key] if "ray start" in line]
        assert len(start) == 1 and "RAY_AUTH_MODE=token ray start" in start[0]
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"] == {"CPU": 0}
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    assert len(gpu) == 1
    assert gpu[0]["resources"][f"accelerator_type:{PROFILES['v100'].ray_accelerator}"] == 1


@pytest.mark.parametrize("address", ["127.0.0.1:1", "auto", "localhost:notaport"])
def test_wrong_address_is_one_line_at_once(tmp_path, tiny_args, capsys, monkeypatch, address):
    from ray._private import services

    from nas.cli.search import main

    # ``auto`` with no cluster anywhere: no RAY_ADDRESS, no recorded `ray start`, none running.
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "find_gcs_addresses", lambda: [])
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    out = tmp_path / "run"
    started = time.monotonic()
    assert main(["--budget", "2", *tiny_args, "--address", address, "--out", str(out)]) == 2
    assert time.monotonic() - started < 15
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert {"127.0.0.1:1": "cannot reach a Ray cluster at 127.0.0.1:1: TCP connection to port "
                           "1 of 127.0.0.1: connection refused",
            "auto": "--address auto found no running Ray cluster (looked at RAY_ADDRESS",
            "localhost:notaport": "is not HOST:PORT"}[address] in err
    assert not out.exists()
