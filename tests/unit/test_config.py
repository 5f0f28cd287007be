"""Config errors are one line, exit code 2, and come before any model loads."""
import pytest
from helpers import TINY

from essa_hpc import config
from essa_hpc.config import ConfigError
from essa_hpc.config.backends import BACKENDS
from essa_hpc.config.schema import MOVED_KEYS
from essa_hpc.config.strategies import STRATEGIES
from essa_hpc.config.validation import validate
from essa_hpc.launch import cli


@pytest.mark.parametrize("overrides, message", [
    (["strategy.popsize=8"], "unknown key 'strategy.popsize'; allowed: kind, population"),
    (["bogus.key=1"], "unknown section 'bogus'"),
    (["strategy.population=many"], "strategy.population: expected an integer"),
    (["run.generations=[1, 2]"], "run.generations: expected an integer"),
    (["model.name=/nonexistent/model/dir"], "model path not found: /nonexistent/model/dir"),
    (["model.name=./missing.gguf"], "model path not found"),
    (["strategy.population=1"], "strategy.population must be >= 2"),
    (["strategy.population"], "bad override 'strategy.population'"),
    (["population=8"], "bad override 'population=8'"),
    (["task.kind=chess"], "task.kind='chess' is not one of"),
    (["strategy.kind=sgd"], "strategy.kind='sgd' is not one of: " + ", ".join(STRATEGIES.names())),
    (["rollout.backend=sglang"], "rollout.backend='sglang' is not one of: " + ", ".join(BACKENDS.names())),
    (["rollout.backend=vllm"], "vLLM's CPU attention needs a head size of at least 32"),
    (["rollout.backend=vllm", "space.kind=full", "strategy.kind=open_es"], "rollout.backend=vllm serves candidates as LoRA"),
    (["rollout.backend=vllm", "model.name=tiny-random:256x2", "rollout.vllm.python=/no/python"],
     "rollout.vllm.python='/no/python' does not exist"),
    (["run.device=tpu"], "run.device='tpu' is not one of: auto, cpu, cuda"),
    pytest.param(["run.device=cuda"], "run.device=cuda but torch sees no CUDA device here",
                 marks=pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")),
    (["strategy.learning_rate=0.1"], "unknown key 'strategy.learning_rate'; it is now strategy.open_es.learning_rate"),
    (["strategy.cma_es.covariance=diag"], "strategy.cma_es.covariance='diag' is not one of: full, separable"),
    (["strategy.cma_es.bogus=1"], "unknown key 'strategy.cma_es.bogus'; allowed: covariance, ties"),
    (["strategy.kind=snes", "strategy.snes.lr_mean=0"], "strategy.snes.lr_mean must be > 0"),
    (["space.kind=full"], "space.kind=full needs strategy.kind in ['open_es']"),
])
def test_bad_config_is_one_line_error_before_model_load(overrides, message, capsys, no_model_load, tmp_path):
    code = cli.main(["train", str(TINY), *overrides, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert message in err, err
    assert not (tmp_path / "run").exists()


def test_more_ranks_than_candidates_is_an_error():
    cfg = config.load(TINY, ["strategy.population=4", "rollout.group_size=1"])
    with pytest.raises(ConfigError, match=r"more ranks \(6\) than candidates"):
        validate(cfg, world_size=6)
    cfg = config.load(TINY, ["strategy.population=4", "rollout.group_size=4"])
    with pytest.raises(ConfigError, match=r"more ranks \(2\) than candidate groups"):
        validate(cfg, world_size=2)
    validate(cfg, world_size=1)


def test_missing_config_file(capsys):
    assert cli.main(["train", "no/such/config.yaml"]) == 2
    assert "config file not found: no/such/config.yaml" in capsys.readouterr().err


def test_overrides_are_typed_and_after_options():
    cfg = config.load(TINY, ["strategy.population=16", "strategy.sigma0=0.25", "run.progress=false",
                             "space.target_modules=q_proj,v_proj"])
    assert cfg.strategy.population == 16 and cfg.strategy.sigma0 == 0.25 and cfg.run.progress is False
    assert cfg.space.target_modules == ["q_proj", "v_proj"]


def test_roundtrip_and_describe(tmp_path):
    cfg = config.load(TINY, ["run.seed=7"])
    config.save_yaml(cfg, tmp_path / "c.yaml")
    again = config.load(tmp_path / "c.yaml")
    assert again == cfg and again.digest() == cfg.digest()
    text = config.describe()
    for key in ("space.kind", "strategy.population", "run.generations", "run.seed", "run.eval_every",
                "task.kind", "model.name"):
        assert f"`{key}`" in text


VALIDATE_ALL = """
import sys
from pathlib import Path
from essa_hpc import config
from essa_hpc.config.validation import validate
for path in sorted(Path("configs").glob("*.yaml")):
    try:
        validate(config.load(path))
        print("ok", path.name)
    except config.ConfigError as exc:
        print("error", path.name, exc)
"""


def test_every_config_validates_in_a_clone_with_nothing_beside_it(tmp_path):
    """A user's clone has no folder beside it (CI's has one, so a config that reaches outside the
    repo would pass CI and fail for users): the configs are validated from a copy that stands alone."""
    import shutil
    import subprocess
    import sys

    from helpers import ROOT
    clone = tmp_path / "alone" / "essa-hpc"
    shutil.copytree(ROOT / "configs", clone / "configs")
    proc = subprocess.run([sys.executable, "-c", VALIDATE_ALL], cwd=clone, capture_output=True, text=True,
                          timeout=120, env={"PATH": "/usr/bin:/bin", "ESSA_NO_MPI": "1", "HF_HUB_OFFLINE": "1"})
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and len(lines) == len(list((ROOT / "configs").glob("*.yaml"))), proc.stderr[-2000:]
    for line in lines:
        # Paper configs name hub models that cannot be checked offline; only those may fail, and only on the model.
        assert line.startswith("ok") or line.split()[2].startswith("model"), line


def test_no_file_a_user_gets_reaches_outside_the_repo():
    import subprocess

    from helpers import ROOT
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout: nothing to list")
    shipped = [f for f in tracked if f.split("/")[0] in {"configs", "essa_hpc", "docs", "slurm", "tools"}
               or f in {"README.md", "Makefile", "pyproject.toml", "BENCHMARKS.md"}]
    outside = [f for f in shipped if not f.endswith(".png") and "../shared" in (ROOT / f).read_text()]
    assert outside == [], outside


def test_readme_config_reference_is_current():
    import importlib.util

    from helpers import ROOT
    spec = importlib.util.spec_from_file_location("ucr", ROOT / "tools" / "update_config_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = (ROOT / "README.md").read_text()
    assert mod.render(text) == text, "README config reference is stale: run tools/update_config_reference.py"


def test_a_config_saved_in_the_earlier_flat_layout_reads_back_the_same():
    cfg = config.load(TINY, ["strategy.kind=open_es", "strategy.open_es.learning_rate=0.3",
                             "strategy.cma_es.ties=rank", "baseline.grpo.loss_type=dr_grpo", "baseline.trdpo.k=6"])
    flat = cfg.to_dict()
    for section, moved in MOVED_KEYS.items():  # the keys that once lived flat, and only those
        for key, kind in moved.items():
            flat[section][key] = flat[section][kind].pop(key)
    assert flat["strategy"]["learning_rate"] == 0.3 and flat["baseline"]["k"] == 6 and flat["task"]["digits"] == 1
    assert config.from_saved(flat) == cfg
    assert config.from_saved(cfg.to_dict()) == cfg  # today's layout passes unchanged


def test_a_flat_task_key_still_works_for_one_release_with_a_one_line_notice(caplog):
    import logging

    with caplog.at_level(logging.WARNING, logger="essa_hpc.config"):
        cfg = config.load(TINY, ["task.digits=3", "task.prompt_template={expr}="])
    assert cfg.task.arithmetic.digits == 3 and cfg.task.arithmetic.prompt_template == "{expr}="
    notices = [r.getMessage() for r in caplog.records]
    assert notices == [f"task.{key} is deprecated: use task.arithmetic.{key} (the flat key goes in the next release)"
                       for key in ("digits", "prompt_template")]
    assert config.load(TINY, ["task.arithmetic.digits=3", "task.arithmetic.prompt_template={expr}="]) == cfg
