"""Quantized frozen bases (model.quantize): bitsandbytes NF4 and LLM.int8, torchao weight-only
int8. The base stays quantized, the adapter path float; runs agree on 1 and 2 ranks; an exported
adapter loads in plain peft on a base that transformers quantized the same way."""
import importlib.metadata
import importlib.util
import json

import numpy as np
import pytest
import torch
from helpers import TINY, essa, metrics, mpiexec

from essa_hpc.config import ConfigError, load
from essa_hpc.config.quantize_modes import QUANTIZE_MODES
from essa_hpc.config.validation import validate

MODES = [m for m, (package, _) in QUANTIZE_MODES.items() if package]
# Wide enough for bitsandbytes' CPU 4-bit kernels in transformers' path, which need in_features of
# at least one quantization block (64): on the default 32-wide tiny model they fail on reshape.
MODEL = "model.name=tiny-random:128x2"


def needs_package(mode: str) -> None:
    package = QUANTIZE_MODES[mode][0]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"model.quantize={mode} needs {package}, not installed here")


def is_quantized(linear) -> bool:
    return type(linear) is not torch.nn.Linear or type(linear.weight) is not torch.nn.Parameter


def transformers_quantization(mode: str):
    """What a user passes to from_pretrained for the same base."""
    from transformers import BitsAndBytesConfig, TorchAoConfig
    if mode == "nf4":
        return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    if mode == "bnb_int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    from torchao.quantization import Int8WeightOnlyConfig
    return TorchAoConfig(Int8WeightOnlyConfig())


@pytest.mark.parametrize("mode", MODES)
def test_base_is_quantized_adapter_float_and_export_loads_in_peft(mode, tmp_path):
    needs_package(mode)
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from essa_hpc.assemble import build_parts
    from essa_hpc.model import load_model

    cfg = load(str(TINY), [MODEL, f"model.quantize={mode}"])
    parts = build_parts(cfg)
    layer = parts.space.layers[0]
    # bitsandbytes swaps the module, torchao the weight's tensor type
    assert is_quantized(layer.base) and layer.v_a.dtype == torch.float32, (type(layer.base), type(layer.base.weight))
    assert not is_quantized(parts.model.lm_head)  # left in float, as transformers leaves it
    items = parts.task.heldout()[:4]
    cand = parts.space.initial() * (1 + 0.3 * np.random.default_rng(0).standard_normal(parts.space.dim))
    parts.space.apply(cand[None], np.zeros(len(items), dtype=int))
    input_ids, mask = parts.rollout._batch(items)
    with torch.no_grad():
        ours = parts.model(input_ids=input_ids, attention_mask=mask).logits[:, -1, :]
    parts.space.restore()
    parts.space.export(cand, tmp_path / "adapter")

    # A user's route: transformers quantizes the float base as it loads, plain peft adds the adapter.
    load_model(cfg.model.__class__(name=cfg.model.name))[0].save_pretrained(tmp_path / "base")
    quantized = AutoModelForCausalLM.from_pretrained(tmp_path / "base", quantization_config=transformers_quantization(mode),
                                                     dtype=torch.float32, device_map="cpu")
    with torch.no_grad():
        theirs = PeftModel.from_pretrained(quantized, tmp_path / "adapter").eval()(
            input_ids=input_ids, attention_mask=mask).logits[:, -1, :]
    torch.testing.assert_close(theirs, ours, rtol=1e-4, atol=1e-4)


@pytest.mark.mpi
@pytest.mark.parametrize("mode", MODES)
def test_two_generations_on_one_and_two_ranks_end_on_the_same_adapter(mode, tmp_path):
    needs_package(mode)
    if not mpiexec():
        pytest.skip("needs mpiexec (pip install mpi4py mpich)")
    shas = {}
    for ranks in (None, 2):
        run = tmp_path / f"ranks{ranks}"
        essa(["train", str(TINY), MODEL, f"model.quantize={mode}", "run.generations=2", "--run-dir", str(run)], ranks=ranks)
        rows = metrics(run)
        assert [r["generation"] for r in rows] == [0, 1, 2] and (run / "adapter" / "adapter_config.json").is_file()
        package = QUANTIZE_MODES[mode][0]  # the results name the quantizing library's version
        assert rows[0]["packages"][package] == importlib.metadata.version(package)
        shas[ranks] = rows[-1]["adapter_sha256"]
    assert shas[None] == shas[2]


@pytest.mark.parametrize("space", ["full", "eggroll"])
def test_spaces_that_perturb_the_base_refuse_a_quantized_one(space):
    with pytest.raises(ConfigError, match=f"space.kind={space} perturbs the base weights and needs float weights"):
        validate(load(str(TINY), ["model.quantize=nf4", f"space.kind={space}", "strategy.kind=open_es"]))


def test_a_mode_whose_package_is_missing_is_one_line(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torchao" else real(name, *a))
    with pytest.raises(ConfigError, match="^model.quantize=int8_weight_only needs the torchao package: "
                                          "pip install torchao$"):
        validate(load(str(TINY), ["model.quantize=int8_weight_only"]))


@pytest.mark.parametrize("mode", MODES)
def test_grpo_trains_a_lora_over_the_quantized_base(mode, tmp_path):
    """QLoRA: the gradient baseline over the same quantized base ES searches over. The LoRA trains (its B
    factors leave zero) and the result differs from the same run over the float base, so the base was
    quantized; the exported adapter scores in `essa-hpc eval` over that base what the run reported."""
    needs_package(mode)
    from safetensors.torch import load_file

    def grpo(run, *extra):
        essa(["baseline", "grpo", str(TINY), MODEL, "baseline.steps=2", "baseline.eval_every=2", "task.heldout_size=8",
              "baseline.batch_size=8", "baseline.num_generations=4", "baseline.learning_rate=1e-2", *extra,
              "--run-dir", str(run)])
        return {k: v for k, v in load_file(str(run / "adapter" / "adapter_model.safetensors")).items() if "lora_B" in k}

    quantized, plain = grpo(tmp_path / "q", f"model.quantize={mode}"), grpo(tmp_path / "f")
    assert quantized and quantized.keys() == plain.keys()
    assert any(float(v.abs().max()) > 0 for v in quantized.values())
    assert any(not torch.equal(quantized[k], plain[k]) for k in quantized)
    rows = metrics(tmp_path / "q")
    assert all(r["loss"] == r["loss"] for r in rows[1:])  # not NaN
    scored = essa(["eval", str(TINY), MODEL, f"model.quantize={mode}", "task.heldout_size=8",
                   "--adapter", str(tmp_path / "q" / "adapter")])
    assert json.loads(scored.stdout)["heldout_reward"] == rows[-1]["heldout_reward"]
