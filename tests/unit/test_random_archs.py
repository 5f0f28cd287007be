"""random:<arch>[:LAYERS]: real architectures with seeded random weights, for speed and memory at
real sizes (the GPU check); never for learning."""
import pytest
from helpers import TINY, essa, metrics

from essa_hpc.config import ConfigError, load
from essa_hpc.config.random_archs import RANDOM_ARCHS
from essa_hpc.config.validation import validate

SMALLEST = "random:qwen2.5-0.5b:1"  # the real width and vocabulary, one layer


def test_the_architecture_is_the_declared_one_and_the_weights_are_seeded():
    from essa_hpc.model import load_model, model_fingerprint

    model, tok = load_model(load(str(TINY), [f"model.name={SMALLEST}"]).model)
    fields = RANDOM_ARCHS["qwen2.5-0.5b"]
    assert type(model).__name__ == "Qwen2ForCausalLM"
    assert (model.config.hidden_size, model.config.vocab_size, model.config.num_hidden_layers) == \
        (fields["hidden_size"], fields["vocab_size"], 1)
    assert model.get_input_embeddings().weight.shape == (151936, 896)
    assert max(tok.get_vocab().values()) < model.config.vocab_size  # the tokenizer's ids are inside the vocabulary
    again, _ = load_model(load(str(TINY), [f"model.name={SMALLEST}"]).model)
    assert model_fingerprint(model) == model_fingerprint(again)


@pytest.mark.parametrize("name, message", [
    ("random:gpt-9", "random models are 'random:ARCH' or 'random:ARCH:LAYERS' with ARCH one of: qwen2.5-0.5b"),
    ("random:qwen2.5-0.5b:0", "at least 1 layer"),
])
def test_a_bad_random_name_is_one_line(name, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        validate(load(str(TINY), [f"model.name={name}"]))


def test_es_runs_a_generation_on_the_smallest(tmp_path):
    run = tmp_path / "run"
    essa(["train", str(TINY), f"model.name={SMALLEST}", "strategy.population=4", "task.batch_size=2",
          "task.heldout_size=2", "rollout.max_new_tokens=2", "run.generations=1", "--run-dir", str(run)])
    assert [r["generation"] for r in metrics(run)] == [0, 1]
    assert (run / "adapter" / "adapter_config.json").is_file()
