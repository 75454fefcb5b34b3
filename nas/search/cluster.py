"""Joining a Ray cluster, and watching its nodes: the plain-Python half of the Ray executor.

Everything here works on plain data (addresses, ``ray.nodes()`` entries, environment
variables), so it is tested without Ray; ``nas.search.ray_executor`` feeds it what Ray reports.

* **Address**: ``--address HOST:PORT`` (or what ``auto`` resolves to) is probed with a plain TCP
  connection before Ray is asked to connect: Ray's own client retries an unreachable address
  for minutes, printing C++ warnings, where this takes at most :data:`PROBE_TIMEOUT_S`.
* **Authentication**: a cluster started with ``RAY_AUTH_MODE=token`` (or, from Ray 2.59, a
  ``ray start --head`` on a machine that holds ``~/.ray/auth_token``; from 2.61 every cluster)
  requires a token, and a driver must then run with ``RAY_AUTH_MODE=token``. Ray sets that
  itself only for ``address="auto"``; the Ray executor does the same for every address when
  :func:`token_source` finds a token (a cluster without authentication ignores it).
* **Nodes**: :class:`NodeWatch` notices when no alive node can run a trial (its CPUs, GPUs and
  accelerator type) and says so once that has lasted ``--node-timeout`` seconds, so a search
  whose nodes are gone stops with an error instead of waiting forever; :func:`node_lost` tells a
  lost node from a lost worker process.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from search_space.errors import NasError
from search_space.messages import counted

PROBE_TIMEOUT_S = 5.0
RAYLET_PROBE_TIMEOUT_S = 1.0
AUTH_MODE_VAR = "RAY_AUTH_MODE"
TOKEN_VAR = "RAY_AUTH_TOKEN"
TOKEN_PATH_VAR = "RAY_AUTH_TOKEN_PATH"
DEFAULT_TOKEN_FILE = Path("~/.ray/auth_token")
_RAY_NAMES = {"cpu": "CPU", "gpu": "GPU"}


class ClusterError(NasError, RuntimeError):
    """The Ray cluster cannot be reached, refuses this driver, or has no node for a trial."""


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6) as a host and a port number."""
    host, sep, port = address.strip().rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.5:6379) or "
                           "auto")
    return host, int(port)


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why a TCP connection to ``host:port`` fails (``None`` if it succeeds)."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except socket.gaierror:
        return f"host {host!r} not found"
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except ConnectionRefusedError:
        return "connection refused"
    except OSError as exc:
        return exc.strerror or str(exc)


def check_reachable(address: str, given: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ClusterError` naming ``given`` (what the user passed) and ``address``
    (what it resolved to) unless a TCP connection to ``address`` succeeds."""
    host, port = split_address(address)
    problem = probe(host, port, timeout)
    if problem is not None:
        resolved = "" if address == given else f" ({given} resolved to {address})"
        raise ClusterError(
            f"cannot reach a Ray cluster at {address}{resolved}: TCP connection to port {port} "
            f"of {host}: {problem}; start one with `ray start --head --port {port}` there, "
            "or check --address")


def token_source(environ: Mapping[str, str] | None = None) -> str | None:
    """Where Ray would find an authentication token (``RAY_AUTH_TOKEN``, the file named by
    ``RAY_AUTH_TOKEN_PATH``, or ``~/.ray/auth_token``), or None if there is none."""
    env = os.environ if environ is None else environ
    if env.get(TOKEN_VAR):
        return TOKEN_VAR
    named = env.get(TOKEN_PATH_VAR)
    paths = [Path(named)] if named else [DEFAULT_TOKEN_FILE.expanduser()]
    for path in paths:
        try:
            if path.read_text().strip():
                return str(path)
        except OSError:
            continue
    return None


def auth_failure(address: str, source: str | None) -> ClusterError:
    """The one line for a cluster that refused this driver's authentication."""
    have = (f"this driver sent the token from {source}" if source
            else "this driver has no token")
    return ClusterError(
        f"the Ray cluster at {address} refused the connection: it requires an authentication "
        f"token and {have}; copy the cluster's token (`ray get-auth-token` on its head node) "
        f"to ~/.ray/auth_token or into {TOKEN_VAR}")


def ray_demand(resources: Mapping[str, float]) -> dict[str, float]:
    """Tune's per-trial resources (``cpu``, ``gpu``, custom) under Ray's node resource names."""
    return {_RAY_NAMES.get(k, k): float(v) for k, v in resources.items() if v}


def demand_text(demand: Mapping[str, float]) -> str:
    return ", ".join(f"{v:g} {k}" if not k.startswith("accelerator_type:") else k
                     for k, v in demand.items())


def can_host(node: Mapping[str, Any], demand: Mapping[str, float]) -> bool:
    """Whether ``node`` (an entry of ``ray.nodes()``) is alive and has, in total, what one
    trial asks for."""
    have = node.get("Resources") or {}
    return bool(node.get("Alive")) and all(have.get(k, 0.0) >= v for k, v in demand.items())


def node_lost(node: Mapping[str, Any] | None) -> bool:
    """Whether a node (its ``ray.nodes()`` entry, or None if the cluster no longer lists it)
    is gone: marked dead, or its raylet no longer accepts connections (Ray marks a node dead
    only after missing its heartbeats for a while; a killed raylet refuses at once)."""
    if node is None or not node.get("Alive"):
        return True
    host, port = node.get("NodeManagerAddress"), node.get("NodeManagerPort")
    if not host or not port:
        return False
    return probe(str(host), int(port), RAYLET_PROBE_TIMEOUT_S) is not None


class NodeWatch:
    """Tracks whether some alive node could run a trial; :meth:`update` with ``ray.nodes()``
    returns the error message once none could for ``timeout`` seconds in a row."""

    def __init__(self, demand: Mapping[str, float], timeout: float, address: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.demand = dict(demand)
        self.timeout = timeout
        self.address = address
        self._clock = clock
        self._none_since: float | None = None

    @property
    def waiting_s(self) -> float:
        """How long no node could run a trial (0 while one can)."""
        return 0.0 if self._none_since is None else self._clock() - self._none_since

    def update(self, nodes: list[Mapping[str, Any]]) -> str | None:
        if any(can_host(node, self.demand) for node in nodes):
            self._none_since = None
            return None
        if self._none_since is None:
            self._none_since = self._clock()
        if self.waiting_s < self.timeout:
            return None
        alive = sum(1 for node in nodes if node.get("Alive"))
        return (f"no node of the Ray cluster at {self.address} can run a trial "
                f"({demand_text(self.demand)}) and none came back within --node-timeout "
                f"{self.timeout:g} s ({counted(alive, 'node')} alive); finished candidates are saved: "
                "add a node and run the same command again")


__all__ = ["ClusterError", "NodeWatch", "auth_failure", "can_host", "check_reachable",
           "node_lost", "probe", "ray_demand", "split_address", "token_source"]
