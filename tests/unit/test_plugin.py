"""A kind from another package: a throwaway plug-in (a strategy, a task and a launcher environment,
one file each plus one entry point each in its own pyproject.toml) is pip-installed into a
temporary folder, and essa-hpc, unedited, trains with it on 1 and 2 ranks.

This is the promise "one file plus one declaration" kept without touching the package."""
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import BIN, TINY, cli_env, essa, metrics, mpiexec, shas

STRATEGY = '''
"""Random search: move the mean to the best candidate of a generation when it beats the last best."""
from dataclasses import dataclass

import numpy as np

from essa_hpc.config.kinds import Spec
from essa_hpc.config.options import opt, positive
from essa_hpc.runtime import seeding
from essa_hpc.strategies.base import Strategy


@dataclass
class Options:
    shrink: float = opt(0.9, "sigma is multiplied by this after a generation without improvement")


def check_config(cfg):
    positive(cfg.strategy.random_search.shrink, "strategy.random_search.shrink")


class RandomSearch(Strategy):
    def __init__(self, x0, population, sigma, run_seed, shrink):
        self.population, self.dim, self.run_seed, self.shrink = population, len(x0), run_seed, shrink
        self._mean, self.sigma, self.best, self.generation = np.array(x0, dtype=np.float64), sigma, -np.inf, 0

    @classmethod
    def from_config(cls, strategy_cfg, x0, sigma0, run_seed):
        return cls(x0, strategy_cfg.population, sigma0, run_seed, strategy_cfg.random_search.shrink)

    def ask(self):
        noise = seeding.rng(self.run_seed, "strategy", self.generation).standard_normal((self.population, self.dim))
        self._cands = self._mean + self.sigma * noise
        return self._cands

    def tell(self, rewards):
        i = int(np.argmax(rewards))
        if rewards[i] > self.best:
            self.best, self._mean = float(rewards[i]), self._cands[i].copy()
        else:
            self.sigma *= self.shrink
        self.generation += 1
        return {"sigma": self.sigma}

    @property
    def mean(self):
        return self._mean

    def state_dict(self):
        return {"mean": self._mean, "sigma": self.sigma, "best": self.best, "generation": self.generation}

    def load_state_dict(self, state):
        self._mean = np.asarray(state["mean"], dtype=np.float64)
        self.sigma, self.best, self.generation = float(state["sigma"]), float(state["best"]), int(state["generation"])


SPEC = Spec("random_search", "essa_plugin_demo.random_search:RandomSearch", "keep the best candidate so far",
            Options, check_config)
'''

TASK = '''
"""Parity: is the number even? Answer 0 or 1."""
from essa_hpc.config.kinds import Spec
from essa_hpc.errors import ConfigError
from essa_hpc.runtime import seeding
from essa_hpc.tasks.answers import last_number
from essa_hpc.tasks.base import Task


def check_config(cfg):
    if cfg.heldout_size > 500:
        raise ConfigError("task.kind=parity has 500 held-out numbers at most")


class ParityTask(Task):
    def split(self):
        numbers = seeding.rng(0, "train_items").permutation(1000)
        items = [{"prompt": f"Is {n} even? 1 for yes, 0 for no.", "answer": int(n % 2 == 0)} for n in numbers]
        return items[500:], items[: self.cfg.heldout_size]

    def score(self, item, completion):
        value = last_number(completion)
        return float(value is not None and value == item["answer"])


SPEC = Spec("parity", "essa_plugin_demo.parity:ParityTask", "is the number even", check=check_config,
            caps={"inline_reward": True})
'''

LAUNCHER = '''
from essa_hpc.runtime.launchers import LauncherEnv

SPEC = LauncherEnv("demo_launcher", "a launcher that sets DEMO_RANK and DEMO_SIZE", ("DEMO_RANK",), ("DEMO_RANK",),
                   ("DEMO_SIZE",))
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "essa-plugin-demo"
version = "0.0.1"

[project.entry-points."essa_hpc.strategies"]
random_search = "essa_plugin_demo.random_search:SPEC"

[project.entry-points."essa_hpc.tasks"]
parity = "essa_plugin_demo.parity:SPEC"

[project.entry-points."essa_hpc.launchers"]
demo_launcher = "essa_plugin_demo.launcher:SPEC"

[tool.setuptools]
packages = ["essa_plugin_demo"]
'''


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory):
    src = tmp_path_factory.mktemp("plugin_src")
    (src / "essa_plugin_demo").mkdir()
    (src / "essa_plugin_demo" / "__init__.py").write_text("")
    for name, text in (("random_search", STRATEGY), ("parity", TASK), ("launcher", LAUNCHER)):
        (src / "essa_plugin_demo" / f"{name}.py").write_text(textwrap.dedent(text))
    (src / "pyproject.toml").write_text(PYPROJECT)
    site = tmp_path_factory.mktemp("plugin_site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert list(site.glob("essa_plugin_demo-*.dist-info/entry_points.txt")), sorted(p.name for p in site.iterdir())
    return site


def plugin_env(site, **extra):
    env = cli_env(**extra)
    env["PYTHONPATH"] = os.pathsep.join([str(site), env["PYTHONPATH"]])
    return env


PLUGIN_RUN = ["strategy.kind=random_search", "strategy.random_search.shrink=0.5", "strategy.mirrored=false",
              "task.kind=parity", "task.heldout_size=16", "task.train_reward=exact", "run.generations=3"]


def test_an_installed_plugin_trains_on_one_and_two_ranks_with_identical_adapters(plugin_path, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    essa(["train", str(TINY), *PLUGIN_RUN, "--run-dir", str(one)], env=plugin_env(plugin_path))
    if mpiexec() is None:
        pytest.skip("no mpiexec: install mpi4py + mpich (make venv)")
    essa(["train", str(TINY), *PLUGIN_RUN, "--run-dir", str(two)], ranks=2, env=plugin_env(plugin_path))
    records = metrics(one)
    assert [r["generation"] for r in records] == [0, 1, 2, 3]
    assert "sigma" in records[1] and records[0]["heldout_reward"] is not None
    assert len(set(shas(one))) > 1  # the plug-in's strategy moved the adapter
    assert shas(one) == shas(two)
    assert (one / "adapter" / "adapter_config.json").is_file()


def test_a_plugin_kind_has_its_options_checks_and_help_like_a_builtin(plugin_path, tmp_path):
    env = plugin_env(plugin_path)
    bad = essa(["train", str(TINY), *PLUGIN_RUN, "strategy.random_search.shrink=0", "--run-dir", str(tmp_path / "r")],
               env=env, check=False)
    assert bad.returncode == 2 and "strategy.random_search.shrink must be > 0" in bad.stderr, bad.stderr
    described = essa(["config", "--describe"], env=env).stdout
    assert "random_search (keep the best candidate so far)" in described
    assert "`strategy.random_search.shrink`" in described and "parity (is the number even)" in described
    plain = [o for o in PLUGIN_RUN if not o.startswith("strategy.random_search.")]
    without = essa(["train", str(TINY), *plain, "--run-dir", str(tmp_path / "r")], check=False)  # not installed
    assert without.returncode == 2 and "strategy.kind='random_search' is not one of" in without.stderr


def test_a_plugin_launcher_environment_is_detected(plugin_path):
    code = ("from essa_hpc.runtime.rankenv import RankEnv\n"
            "env = RankEnv.from_environ({'DEMO_RANK': '1', 'DEMO_SIZE': '3'})\n"
            "print(env.launcher, env.rank, env.world)\n")
    out = subprocess.run([str(BIN / "python"), "-c", code], capture_output=True, text=True, timeout=60,
                         env=plugin_env(plugin_path))
    assert out.stdout.split() == ["demo_launcher", "1", "3"], out.stderr[-2000:]


def test_a_broken_plugin_is_skipped_with_one_warning(plugin_path, tmp_path):
    """A plug-in whose module fails to import must not stop runs that do not use it."""
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "essa_broken_plugin.py").write_text("raise ImportError('needs a library that is not installed')\n")
    dist = broken / "essa_broken_plugin-0.0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: essa-broken-plugin\nVersion: 0.0.1\n")
    (dist / "entry_points.txt").write_text("[essa_hpc.strategies]\nbroken = essa_broken_plugin:SPEC\n")
    env = plugin_env(plugin_path)
    env["PYTHONPATH"] = os.pathsep.join([str(broken), env["PYTHONPATH"]])
    out = essa(["config", str(TINY)], env=env)
    warnings = [line for line in out.stderr.splitlines() if "broken" in line]
    assert len(warnings) == 1 and "strategy plug-in 'broken'" in warnings[0] and "skipped" in warnings[0], out.stderr
    assert "kind: cma_es" in out.stdout
