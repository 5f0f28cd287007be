"""A real SLURM cluster for these tests, started and stopped by tools/cluster/local_slurm.sh: one node
(this host), or for the multi-node tests three nodes in network namespaces on a private bridge.

Skipped (with the reason) only where the cluster cannot exist: not root, or no apt.
Set ESSA_SLURM_TESTS=0 to skip on purpose. If it can exist but fails to start, the tests fail.
"""
import os
import shutil
import subprocess

import pytest
from helpers import ROOT

SCRIPT = ROOT / "tools" / "cluster" / "local_slurm.sh"


def _unavailable_reason() -> str | None:
    if os.environ.get("ESSA_SLURM_TESTS") == "0":
        return "ESSA_SLURM_TESTS=0"
    if os.geteuid() != 0:
        return "the local SLURM cluster needs root (it installs Debian packages and runs daemons)"
    if not shutil.which("apt-get") and not shutil.which("slurmctld"):
        return "no apt-get and no slurmctld: cannot install SLURM here"
    return None


@pytest.fixture(scope="session")
def slurm_cluster():
    reason = _unavailable_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run([str(SCRIPT), "start"], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"tools/cluster/local_slurm.sh start failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    yield
    subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=300)


# Three nodes: two for the jobs, and node3, drained, as the idle control whose link counts the
# periodic SLURM traffic that every node gets (tools/bench/wire_bytes.py subtracts it).
MULTINODE = 3


@pytest.fixture(scope="module")
def multinode_cluster():
    reason = _unavailable_reason()
    if reason:
        pytest.skip(reason)
    proc = subprocess.run([str(SCRIPT), "start", "--nodes", str(MULTINODE)], capture_output=True, text=True,
                          timeout=900)
    if proc.returncode != 0:
        pytest.fail(f"tools/cluster/local_slurm.sh start --nodes {MULTINODE} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    subprocess.run(["scontrol", "update", "nodename=node3", "state=drain", "reason=idle control for wire bytes"],
                   check=True, timeout=60)
    yield
    subprocess.run([str(SCRIPT), "stop"], capture_output=True, text=True, timeout=300)
