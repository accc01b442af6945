"""A real, private Ray head for tests and benchmarks: ``ray start --head --block`` on 127.0.0.1 with
its own temporary folder, HOME, ports and ``RAY_AUTH_MODE``, stopped by killing exactly the
processes it started (its process group, then anything still running from its folder), never
with a global ``ray stop`` that could end someone else's head on the same machine.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent  # the venv's ray, and the python the jobs run (on the PATH)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RayHead:
    """``with RayHead(cpus=2) as head: head.address`` (the dashboard's URL) and ``head.env``
    (the environment a client of this head needs: its HOME and RAY_AUTH_MODE)."""

    def __init__(self, cpus: int = 2, object_store_bytes: int = 100_000_000) -> None:
        # Short: Ray's socket paths live under it and must stay under the kernel's 107 characters.
        self.root = Path(tempfile.mkdtemp(prefix="gr-", dir="/tmp"))
        self.home = self.root / "home"
        self.home.mkdir()
        self.port, self.dashboard_port = free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.env = {"HOME": str(self.home), "RAY_AUTH_MODE": "disabled"}
        self.cpus, self.object_store_bytes = cpus, object_store_bytes
        self.process: subprocess.Popen | None = None
        self.log = self.root / "head.log"

    def start(self, timeout: float = 90) -> "RayHead":
        env = {**os.environ, **self.env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
               "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
        command = [str(BIN / "ray"), "start", "--head", "--block", f"--num-cpus={self.cpus}", "--num-gpus=0",
                   "--disable-usage-stats", "--node-ip-address=127.0.0.1", "--dashboard-host=127.0.0.1",
                   f"--port={self.port}", f"--dashboard-port={self.dashboard_port}",
                   f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                   f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
                   f"--runtime-env-agent-port={free_port()}", f"--node-manager-port={free_port()}",
                   f"--object-manager-port={free_port()}", f"--object-store-memory={self.object_store_bytes}",
                   f"--temp-dir={self.root / 't'}", "--include-dashboard=true"]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(command, env=env, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ray start ended ({self.process.returncode}): {self.log.read_text()[-3000:]}")
            if self.answers():
                return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"the Ray head did not answer within {timeout:.0f} s: {self.log.read_text()[-3000:]}")

    def answers(self) -> bool:
        """The dashboard answers, its job agent takes jobs and the head reports its CPUs."""
        try:
            with urllib.request.urlopen(f"{self.address}/api/jobs/", timeout=2) as response:
                if response.status != 200:
                    return False
            with urllib.request.urlopen(f"{self.address}/api/cluster_status?format=0", timeout=2) as response:
                usage = json.load(response)["data"]["clusterStatus"]["loadMetricsReport"]["usage"]
            return usage.get("CPU", [0, 0])[1] == self.cpus
        except (OSError, ValueError, KeyError, TypeError):
            return False

    def stop(self) -> None:
        """SIGTERM to the head's process group, SIGKILL to what is left, then any process still
        running in the head's folder (job drivers live in sessions of their own)."""
        if self.process is not None:
            pgid = self.process.pid  # start_new_session: the group is the ray start process's own
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(pgid, sig)
                except ProcessLookupError:
                    break
                try:
                    self.process.wait(timeout=wait)
                except subprocess.TimeoutExpired:
                    pass
                time.sleep(0.5)
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process = None
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def leftovers(self) -> list[int]:
        """Live processes whose working directory or command line lies in the head's folder."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                cwd = os.readlink(entry / "cwd")
                cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            if cwd.startswith(str(self.root)) or str(self.root) in cmdline:
                found.append(int(entry.name))
        return found

    def __enter__(self) -> "RayHead":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
