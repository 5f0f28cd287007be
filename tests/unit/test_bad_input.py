"""Bad input gets one clear line before any model loads (where it can), never silent acceptance."""
import json

import pytest
from helpers import TINY, essa

from essa_hpc import config
from essa_hpc.config import ConfigError
from essa_hpc.launch import cli

ONE_LINE_BEFORE_MODEL = [
    (["strategy.sigma0=nan"], "strategy.sigma0: expected a finite number, got 'nan'"),
    (["rollout.temperature=nan"], "rollout.temperature: expected a finite number"),
    (["sft.learning_rate=nan"], "sft.learning_rate: expected a finite number"),
    (["strategy.open_es.learning_rate=inf"], "strategy.open_es.learning_rate: expected a finite number"),
    (["task.reward_timeout_s=-inf"], "task.reward_timeout_s: expected a finite number"),
    (["space.alpha_fraction=.nan"], "space.alpha_fraction: expected a finite number"),
    (["run.seed=-1"], "run.seed must be >= 0"),
    (["space.target_modules=[q_proj,foo_proj]"], "space.target_modules: ['foo_proj'] match no linear layer"),
    (["task.reward_isolation=thread"], "task.reward_isolation='thread' is not one of"),
]


@pytest.mark.parametrize("overrides, message", ONE_LINE_BEFORE_MODEL)
def test_silently_accepted_values_are_refused(overrides, message, capsys, no_model_load, tmp_path):
    code = cli.main(["train", str(TINY), *overrides, "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


def test_a_duplicated_yaml_section_or_key_is_refused(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("strategy:\n  population: 8\nrun:\n  generations: 2\nstrategy:\n  population: 16\n")
    with pytest.raises(ConfigError, match=r"duplicate key 'strategy' \(line 5\)"):
        config.load(path)
    path.write_text("run:\n  seed: 1\n  seed: 2\n")
    with pytest.raises(ConfigError, match="duplicate key 'seed'"):
        config.load(path)


def test_a_target_module_the_loaded_model_lacks_is_named():
    """For models whose layers are known only after loading: every name must match."""
    from essa_hpc.model import load_model
    from essa_hpc.spaces.adapter_io import target_linears

    model, _ = load_model(config.ModelConfig())
    assert len(target_linears(model, ["q_proj", "v_proj"])) == 4  # 2 layers
    with pytest.raises(ConfigError, match=r"\['foo_proj'\] match no nn.Linear.*q_proj"):
        target_linears(model, ["q_proj", "foo_proj"])


@pytest.mark.parametrize("content, suffix, message", [
    (b"not a model", ".txt", "is a file but not a .gguf"),
    (b"PK\x03\x04 a zip, not GGUF", ".gguf", "does not start with the GGUF magic"),
])
def test_model_name_that_is_not_a_model(content, suffix, message, tmp_path, capsys, no_model_load):
    fake = tmp_path / f"model{suffix}"
    fake.write_bytes(content)
    code = cli.main(["train", str(TINY), f"model.name={fake}", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run") / "run"
    essa(["train", str(TINY), "run.generations=2", "space.rank=2", "--run-dir", str(run)])
    return run


def test_eval_run_dir_uses_the_runs_own_config(finished_run):
    out = essa(["eval", "--run-dir", str(finished_run), "task.heldout_size=16"])
    assert json.loads(out.stdout.splitlines()[-1])["heldout_size"] == 16


def test_eval_run_dir_with_a_mismatched_config_is_one_line(finished_run):
    proc = essa(["eval", str(TINY), "--run-dir", str(finished_run)], check=False)  # rank 4 (tiny.yaml), the run used 2
    assert proc.returncode == 2, proc.stderr
    assert "does not match the run" in proc.stderr and "space.rank: 2 -> 4" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_export_to_a_file_is_one_line(finished_run, tmp_path):
    target = tmp_path / "afile"
    target.write_text("x")
    proc = essa(["export", str(finished_run), str(target)], check=False)
    assert proc.returncode == 2 and "exists and is not a directory" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
