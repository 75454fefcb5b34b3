"""Ray nodes started with the ``ray`` CLI on this machine, and stopped exactly: for the
cluster tests and ``bench/cluster.py``.

Each node is one ``ray start ... --block`` command started in its own session (so its own
process group); stopping a node kills that process group and then whatever else is left in
its session (Ray's workers run in process groups of their own, in the same session). Nothing
else is touched: never ``ray stop``, never a kill by name, so the Ray instances of other
processes on the machine are safe. All nodes of a :class:`RayNodes` share one temporary
folder (``--temp-dir``) and take free ports, so they never collide with another cluster.

Commands are given as the README writes them (``ray get-auth-token --generate``,
``RAY_AUTH_MODE=token ray start --head --port 6379 --num-cpus 0``,
``RAY_AUTH_MODE=token RAY_AUTH_TOKEN=TOKEN ray start --address HEAD_IP:6379``):
:meth:`RayNodes.start` puts in the real port, head address and token and adds the flags a
shared machine needs (``--block``, ``--temp-dir``, free ports for every service).

Every node runs with a home of its own, as on separate machines: the head's is where
:meth:`RayNodes.make_token` made the token; every worker (and :meth:`RayNodes.home` for a
driver) starts from an empty one, so nothing found in a home (``~/.ray/auth_token`` from an
earlier ``ray.init()``) can make a command work that would fail on a fresh machine.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

README_PORT = "6379"
README_HEAD = "HEAD_IP"
README_TOKEN = "TOKEN"
RAY = str(Path(sys.executable).with_name("ray"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Node:
    """One ``ray start --block`` process (a session leader) and what it printed."""

    proc: subprocess.Popen[bytes]
    log: Path
    head: bool
    node_id: str | None = None
    extra: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class RayNodes:
    """The nodes of one test cluster; use as a context manager (everything stops on exit)."""

    def __init__(self) -> None:
        # Short: Ray's unix sockets live below it and their paths are limited to 107 bytes.
        self.temp_dir = Path(tempfile.mkdtemp(prefix="effnas-ray-", dir="/tmp"))
        self.port = free_port()
        self.address: str | None = None
        self.token: str | None = None
        self.nodes: list[Node] = []
        self.head_home = self.home()

    def home(self) -> Path:
        """A fresh, empty home folder (a machine that never ran Ray)."""
        return Path(tempfile.mkdtemp(prefix="home-", dir=self.temp_dir))

    def environment(self, env: dict[str, str], home: Path) -> dict[str, str]:
        """This process's environment for a command with ``env`` (a README line's variables,
        placeholders filled in) run in ``home``; no Ray variable of this process is kept."""
        kept = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
        filled = {k: self.fill(v) for k, v in env.items()}
        return {**kept, "HOME": str(home), "RAY_USAGE_STATS_ENABLED": "0", **filled}

    def fill(self, word: str) -> str:
        """A README word with this cluster's port, head address and token."""
        word = word.replace(README_PORT, str(self.port))
        if README_HEAD in word:
            assert self.address is not None, "start the head first"
            word = word.replace(f"{README_HEAD}:{self.port}", self.address)
        if README_TOKEN in word:
            assert self.token is not None, "make the token first"
            word = word.replace(README_TOKEN, self.token)
        return word

    def make_token(self, readme_line: str) -> str:
        """Run the README's token line on the head's machine; the token it printed."""
        env, words = split_line(readme_line)
        assert words[:2] == ["ray", "get-auth-token"], readme_line
        done = subprocess.run([RAY, *words[1:]], capture_output=True, text=True, timeout=60,
                              env=self.environment(env, self.head_home))
        assert done.returncode == 0, done.stderr
        self.token = done.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"[0-9a-f]{32,}", self.token), done.stdout
        return self.token

    def command(self, readme_line: str) -> tuple[dict[str, str], list[str]]:
        """A README ``ray start`` line as environment and argv for this cluster."""
        env, words = split_line(readme_line)
        assert words[:2] == ["ray", "start"], readme_line
        return env, [RAY, "start", *(self.fill(word) for word in words[2:])]

    def start(self, readme_line: str, timeout: float = 90.0) -> Node:
        """Start the node ``readme_line`` describes and wait until it runs."""
        env, argv = self.command(readme_line)
        head = "--head" in argv
        argv += ["--block", "--temp-dir", str(self.temp_dir), "--disable-usage-stats"]
        for flag in ("--node-manager-port", "--object-manager-port",
                     "--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                     "--metrics-export-port", "--runtime-env-agent-port"):
            argv += [flag, str(free_port())]
        if head:
            argv += ["--include-dashboard", "false", "--dashboard-port", str(free_port())]
        log = self.temp_dir / f"node-{len(self.nodes)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True,
                                    env=self.environment(env, self.head_home if head
                                                         else self.home()))
        node = Node(proc, log, head)
        self.nodes.append(node)
        deadline = time.monotonic() + timeout
        while "Ray runtime started" not in node.output():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray start failed ({' '.join(argv)}):\n{node.output()}")
            time.sleep(0.2)
        if head:
            found = re.search(r"ray start --address='([^']+)'", node.output())
            assert found, node.output()
            self.address = found.group(1)
        node.node_id = self._node_id(node, deadline)
        return node

    def _node_id(self, node: Node, deadline: float) -> str:
        """The node's Ray node id, from its raylet's log (the raylet is in its process group)."""
        while time.monotonic() < deadline:
            for pid in _group(node.pid):
                for path in self.temp_dir.glob("session_*/logs/raylet*.out"):
                    found = re.search(rf"\s{pid} {pid}\] \(raylet\) .*Setting node ID "
                                      r"node_id=([0-9a-f]+)", path.read_text(errors="replace"))
                    if found:
                        return found.group(1)
            time.sleep(0.2)
        raise RuntimeError(f"no node id found for node {node.pid}:\n{node.output()}")

    def processes(self, node: Node) -> list[tuple[int, str]]:
        """(pid, command line) of every live process of ``node``'s session."""
        return [(pid, _cmdline(pid)) for pid in _session(node.pid)]

    def kill(self, node: Node) -> None:
        """SIGKILL ``node``'s process group, then what else is left of its session."""
        if node.proc.poll() is None:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        node.proc.wait()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            left = _session(node.pid)
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.1)

    def close(self) -> None:
        for node in reversed(self.nodes):
            self.kill(node)
        shutil.rmtree(self.temp_dir, ignore_errors=True)

    def __enter__(self) -> RayNodes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def split_line(readme_line: str) -> tuple[dict[str, str], list[str]]:
    """A shell line's leading ``NAME=value`` assignments and its words."""
    words = shlex.split(readme_line)
    env = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        name, value = words.pop(0).split("=", 1)
        env[name] = value
    return env, words


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # after "pid (comm) "


def _live(fields: list[str] | None) -> bool:
    return fields is not None and fields[0] not in ("Z", "X")


def _matching(index: int, value: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if _live(fields) and fields is not None and int(fields[index]) == value:
                found.append(int(entry.name))
    return found


def _group(pgid: int) -> list[int]:
    return _matching(2, pgid)  # state, ppid, pgrp, session


def _session(sid: int) -> list[int]:
    return _matching(3, sid)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


__all__ = ["Node", "RayNodes", "free_port", "split_line"]
