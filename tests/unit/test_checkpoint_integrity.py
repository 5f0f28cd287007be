"""Checkpoints: every byte verified, every write failure survived, and `status` tells the truth."""
import json
import subprocess

import numpy as np
import pytest
from helpers import TINY, essa, shas

from essa_hpc import checkpoint

GENERATION = 0x1234_5678_9ABC  # distinctive bytes, so the test can find the attribute in the file


def _state():
    return {"strategy": {"mean": np.arange(6.0), "sigma": 0.25, "kind": "cma"},
            "metrics": {"records": json.dumps([{"generation": 1}])}}


def _same(a: dict, b: dict) -> bool:
    fa, fb = checkpoint._flatten(a), checkpoint._flatten(b)
    return fa.keys() == fb.keys() and all(np.array_equal(np.asarray(fa[k]), np.asarray(fb[k])) for k in fa)


def _flip_and_load(image: bytes, bit: int, path) -> str:
    data = bytearray(image)
    data[bit // 8] ^= 1 << (bit % 8)
    path.write_bytes(bytes(data))
    try:
        got = checkpoint.load(path)
    except checkpoint.CheckpointError:
        return "rejected"
    return "identical" if (got["generation"] == GENERATION and _same(got["state"], _state())
                           and got["config"] == {"seed": 7}) else "ALTERED"


def test_a_flipped_bit_anywhere_is_rejected_or_harmless(tmp_path):
    image = checkpoint.file_image(GENERATION, _state(), {"seed": 7})
    target = tmp_path / "ckpt_000001.h5"
    # Every bit of the generation attribute and of the config attribute: the checksum used to skip them.
    gen_at = image.find(np.int64(GENERATION).tobytes())
    cfg_at = image.find(b'{"seed": 7}')
    assert gen_at > 0 and cfg_at > 0
    bits = list(range(gen_at * 8, (gen_at + 8) * 8)) + list(range(cfg_at * 8, (cfg_at + 11) * 8))
    rng = np.random.default_rng(0)
    bits += rng.integers(0, len(image) * 8, size=300).tolist()  # and anywhere else
    outcomes = {b: _flip_and_load(image, b, target) for b in bits}
    altered = [b for b, o in outcomes.items() if o == "ALTERED"]
    assert not altered, f"{len(altered)} flips loaded altered content, e.g. bit {altered[:5]}"
    assert sum(o == "rejected" for o in outcomes.values()) > 100  # the flips really hit something


def test_format_1_checkpoints_still_load(tmp_path):
    import h5py

    path = tmp_path / "ckpt_000002.h5"
    arrays = {k: checkpoint._to_array(v) for k, v in checkpoint._flatten(_state()).items()}
    with h5py.File(path, "w") as f:
        for key, arr in arrays.items():
            f.create_dataset(key, data=arr)
        f.attrs.update({"config": "{}", "format_version": 1, "package_version": "0", "generation": 2,
                        "string_keys": json.dumps(["metrics/records", "strategy/kind"]),
                        "sha256": checkpoint._digest(arrays)})
    assert _same(checkpoint.load(path)["state"], _state())


@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mnt)], capture_output=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {proc.stderr.decode().strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_a_full_disk_during_a_checkpoint_fails_in_one_line_and_resumes(small_tmpfs, tmp_path):
    run = small_tmpfs / "run"
    proc = essa(["train", str(TINY), "run.generations=8", "ckpt.keep=3", "--run-dir", str(run)], check=False)
    assert proc.returncode not in (0, 139) and proc.returncode > 0, proc.stderr[-2000:]
    lines = [x for x in proc.stderr.splitlines() if "checkpoint write failed" in x]
    assert len(lines) == 1 and "No space left on device" in lines[0], proc.stderr[-3000:]
    assert "is intact" in lines[0] and "Exception ignored" not in proc.stderr
    assert not list((run / "checkpoints").glob("*.tmp*"))
    intact = checkpoint.latest_valid(run / "checkpoints")
    assert intact is not None
    # With space again, the same command resumes and finishes on the uninterrupted adapter.
    subprocess.run(["mount", "-o", "remount,size=20m", str(small_tmpfs)], check=True)
    essa(["train", str(TINY), "run.generations=8", "ckpt.keep=3", "--run-dir", str(run)])
    ref = tmp_path / "ref"
    essa(["train", str(TINY), "run.generations=8", "--run-dir", str(ref)])
    assert shas(run) == shas(ref)


def test_status_with_corrupt_checkpoints_and_a_cut_metrics_line(tmp_path):
    run = tmp_path / "run"
    essa(["train", str(TINY), "run.generations=3", "--run-dir", str(run)])
    good = json.loads(essa(["status", str(run)]).stdout)
    assert good["finished"] and good["last_checkpoint"] == "ckpt_000003.h5" and good["corrupt_checkpoints"] == []
    last = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()][-1]
    assert good["signal"]["tied_fraction"] == last["tied_fraction"]  # the signal diagnostics, as logged
    assert good["signal"]["update_snr"] == last["update_snr"] and "update_snr_mean_last_3" in good["signal"]
    for ckpt in (run / "checkpoints").iterdir():
        ckpt.write_bytes(ckpt.read_bytes()[:500])
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"generation": 4, "rew')  # a write cut short by a crash
    status = json.loads(essa(["status", str(run)]).stdout)
    assert status["last_checkpoint"] is None and not status["finished"]
    assert status["corrupt_checkpoints"] == ["ckpt_000001.h5", "ckpt_000002.h5", "ckpt_000003.h5"]
    assert status["unreadable_metrics_lines"] == [5] and status["generation"] == 3
