"""The ES loop: one call per stage, the same on every rank.

    sample mini-batch -> ask -> evaluate own groups -> allreduce rewards -> tell
    -> checksum -> held-out -> log -> checkpoint -> preemption check

Only the reward vector (λ rewards, the token count and 4 reward-fault counts, as
float64), a stop code (int32) and, every K generations, an adapter checksum
(8 bytes) cross ranks; a held-out evaluation adds one float and its 4 fault counts.
Line g of metrics.jsonl describes the adapter after g updates; line 0 is the start. With a
validation set (``task.validation_size``) each held-out evaluation also scores it, and the best
mean so far is kept (``selection.py``) for ``run.select_best``.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from essa_hpc import checkpoint
from essa_hpc.assemble import Parts, build_search, initial_sigma
from essa_hpc.checkpoint.manager import CheckpointManager, FnState
from essa_hpc.config import Config
from essa_hpc.config.quantize_modes import package_versions
from essa_hpc.evaluation import evaluate_population, heldout_score
from essa_hpc.rewards import FAULT_KINDS
from essa_hpc.runtime import budget
from essa_hpc.runtime.comm import Comm
from essa_hpc.runtime.loggers import MetricsLoggers
from essa_hpc.runtime.preempt import EXIT_INTERRUPTED, Preemption
from essa_hpc.runtime.runlog import MetricsLog, Stopwatch, write_summary
from essa_hpc.selection import BestOnValidation
from essa_hpc.strategies.diagnostics import SignalMonitor, generation_signal

log = logging.getLogger(__name__)


class RankMismatchError(RuntimeError):
    pass


class Trainer:
    def __init__(self, cfg: Config, comm: Comm, run_dir: Path, parts: Parts, found: dict | None = None,
                 preempt: Preemption | None = None):
        """``parts``: what ``assemble.build_parts`` built (or a test's fakes); ``found``: the
        checkpoint to resume from (``CheckpointManager.find_resume``), or None."""
        self.cfg, self.comm, self.run_dir = cfg, comm, Path(run_dir)
        self.preempt = preempt or Preemption()
        self.parts = parts
        self.space, self.task = parts.space, parts.task
        self.strategy = build_search(cfg, self.space)
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl", comm.is_root, MetricsLoggers(cfg, self.run_dir))
        self.ckpt = CheckpointManager(self.run_dir, cfg.ckpt.every, cfg.ckpt.keep, writer=comm.is_root)
        self.generation = 0
        self.best = BestOnValidation()
        self.last_resync: int | None = None  # generation of the last checksum resync
        if found is None:
            self.metrics.reset([])  # an earlier run's files were set aside in setup (CheckpointManager.prepare)
        else:
            self.ckpt.restore(found, self.checkpoint_parts())
        self.heldout, self.validation = self.task.heldout(), self.task.validation()
        # Candidates that are seed addresses have no direction to judge (the full and eggroll spaces).
        self.signal_dim = 0 if self.space.seed_addressed else len(self.strategy.mean)
        self.signal = SignalMonitor(cfg.run.signal_window)
        for record in self.metrics.records:  # a resumed run watches the same window
            self.signal.observe(record, self.signal_dim)

    def checkpoint_parts(self) -> dict:
        """What a checkpoint holds, in load order: the base model's identity first (a wrong model is
        refused before anything loads), then the space, the strategy, the counters, the metrics,
        and last a check that the restored adapter is the one that was saved."""
        return {"model": FnState(self._model_identity, self._check_model),
                "space": self.space, "strategy": self.strategy,
                "sampler": FnState(lambda: {"kind": "seeded", "generation": self.generation}, self._load_counters),
                "metrics": self.metrics, "best": self.best,
                "adapter": FnState(self._adapter_record, self._check_adapter)}

    def _model_identity(self) -> dict:
        return {"fingerprint": self.parts.fingerprint, "name": self.cfg.model.name}

    def _check_model(self, saved: dict) -> None:
        if saved.get("fingerprint") != self.parts.fingerprint:
            raise ValueError("the base model weights differ from the checkpoint's")

    def _load_counters(self, saved: dict) -> None:
        self.generation = int(saved["generation"])

    def _adapter_record(self) -> dict:
        mean = self.strategy.mean
        return {"vector": mean, "sha256": self.space.digest(mean)}

    def _check_adapter(self, saved: dict) -> None:
        if saved.get("sha256") != self.space.digest(self.strategy.mean):
            raise ValueError("the restored adapter differs from the one the checkpoint recorded")

    # --- stages -----------------------------------------------------------------
    def heldout_reward(self, mean: np.ndarray, items: list[dict] | None = None) -> tuple[float, dict]:
        """Held-out metric of ``mean`` (on ``items``, default the held-out set) and the reward faults
        of that evaluation, summed over ranks."""
        p = self.parts
        p.faults.take_vector()  # start this evaluation's count from zero
        score = heldout_score(p.rollout, self.space, p.scorer, self.space.evaluation_vector(mean),
                              self.heldout if items is None else items, self.cfg.rollout.max_rows, self.comm)
        return score, self.fault_record(self.comm.allreduce_sum(p.faults.take_vector()))  # 4 floats

    def evaluate_mean(self, mean: np.ndarray) -> dict:
        """The metrics entries of one evaluation of ``mean``: held-out, and validation when there is a
        validation set (the best validated mean is kept for run.select_best)."""
        out = dict(zip(("heldout_reward", "heldout_faults"), self.heldout_reward(mean)))
        if self.validation:
            out["validation_reward"], out["validation_faults"] = self.heldout_reward(mean, self.validation)
            self.best.offer(self.generation, out["validation_reward"], mean)
            out["best_generation"] = self.best.generation
        return out

    def es_seconds(self) -> float:
        """ES time so far, as ``run.budget_s`` counts it: step time less evaluations (rank 0's records)."""
        return sum(r.get("step_s", 0.0) - r.get("heldout_s", 0.0) for r in self.metrics.records)

    def budget_count(self, seconds_this_step: float) -> float:
        """ES seconds as ``run.budget_s`` counts them once this step is counted. The step's own
        record times it a little later (after the record is built), so the record keeps this count too."""
        return self.es_seconds() + seconds_this_step

    def batch_size(self) -> int:
        """Prompts per candidate for the generation being computed (task.late_batch_size late in the run)."""
        t = self.cfg.task
        # self.generation counts the generations done, so generation self.generation + 1 is being computed
        start = t.late_batch_from - 1 if t.late_batch_from > 1 else int(t.late_batch_from * self.cfg.run.generations)
        late = t.late_batch_size and self.generation >= start
        return t.late_batch_size if late else t.batch_size

    def fault_record(self, summed_counts: np.ndarray) -> dict:
        """The metrics entry for fault counts already summed over ranks; rank 0 warns if any."""
        faults = {k: int(v) for k, v in zip(FAULT_KINDS, summed_counts)}
        if any(faults.values()) and self.comm.is_root:
            log.warning("generation %d: reward faults %s (each scored 0; see task.reward_timeout_s and "
                        "task.reward_isolation)", self.generation, faults)
        return faults

    def check_ranks_agree(self, digest: str) -> list[int]:
        """The ranks whose adapter differed from rank 0's, now resynced to it ([] when all agreed).
        A second mismatch within run.resync_window generations of a resync stops the run."""
        bad = self.comm.mismatched_ranks(digest)
        if not bad:
            return []
        window, last = self.cfg.run.resync_window, self.last_resync
        if not window or (last is not None and self.generation - last <= window):
            again = f" again, {self.generation - last} generations after the resync at {last}" if last else ""
            raise RankMismatchError(f"adapter checksum of rank(s) {bad} differs from rank 0 at generation "
                                    f"{self.generation}{again}: ranks diverged (different library builds or BLAS?)")
        self.resync_from_root()
        self.last_resync = self.generation
        if self.comm.is_root:
            log.warning("generation %d: adapter checksum of rank(s) %s differed from rank 0; rank 0's state was "
                        "broadcast to every rank and the run goes on", self.generation, bad)
        return bad

    def resync_from_root(self) -> None:
        """Every rank takes rank 0's state: the checkpoint image rank 0 would write now, broadcast as
        bytes and restored through the resume path (rare; the only model-sized message of a run)."""
        parts = self.checkpoint_parts()
        image = b""
        if self.comm.is_root:
            image = checkpoint.file_image(self.generation, {n: part.state_dict() for n, part in parts.items()},
                                          self.cfg.to_dict())
        size = int(self.comm.bcast_array(np.array([len(image)], dtype=np.int64))[0])
        payload = np.frombuffer(image, dtype=np.uint8).copy() if self.comm.is_root else np.empty(size, np.uint8)
        payload = self.comm.bcast_array(payload)
        if not self.comm.is_root:
            self.ckpt.restore({**checkpoint.load_image(payload.tobytes(), "rank 0's state"), "path": "rank 0's state"},
                              parts)  # the resume path, with its one-line refusal of a part that does not fit

    # --- loop -------------------------------------------------------------------
    def run(self) -> int:
        try:
            return self._run()
        finally:
            self.metrics.close()  # the loggers of run.report_to

    def _run(self) -> int:
        cfg, comm = self.cfg, self.comm
        if self.generation == 0:
            self.log_start()
        bar = tqdm(total=cfg.run.generations, initial=self.generation, desc="ES", unit="gen", dynamic_ncols=True,
                   disable=not (comm.is_root and cfg.run.progress))
        budget_spent = budget.spent(comm, cfg.run.budget_s, self.es_seconds())
        while self.generation < cfg.run.generations and not budget_spent:  # a budget-finished run stays finished
            record, stop = self.step()
            if record.get("budget_stop"):
                log.info("run.budget_s=%g spent at generation %d: finishing", cfg.run.budget_s, self.generation)
                break
            bar.update(1)
            bar.set_postfix(reward=f"{record['reward_mean']:.3f}", tied=f"{record['tied_fraction']:.2f}",
                            heldout=self.last_heldout())
            if stop:
                bar.close()
                # Every rank leaves together, after rank 0's checkpoint: a rank that exits first ends
                # the step for srun --kill-on-bad-exit, which would kill rank 0 mid-write.
                comm.barrier()
                what = "interrupted" if stop == EXIT_INTERRUPTED else "preemption"
                log.warning("%s (%s): checkpointed generation %d, exiting with %d; run the same command again "
                            "to resume", what, self.preempt.signal_name or "another rank", self.generation, stop)
                return stop
        bar.close()
        if comm.is_root:
            write_summary(self.run_dir / "summary.json", self.metrics.records, cfg.run.generations, FAULT_KINDS,
                          self.export())
        return 0

    def last_heldout(self) -> str:
        """The latest held-out score with its generation, e.g. '0.612@g10' (kept between evaluations)."""
        last = next((r for r in reversed(self.metrics.records) if "heldout_reward" in r), None)
        return f"{last['heldout_reward']:.3f}@g{last['generation']}" if last else ""

    def export(self) -> dict:
        """Rank 0: write run_dir/adapter (the best validated one under run.select_best, the last one
        in run_dir/adapter_last then); returns what the summary records about the choice."""
        out = self.run_dir / "adapter"
        if not (self.cfg.run.select_best and self.best.vector is not None):
            self.space.export(self.strategy.mean, out)
            log.info("exported the adapter to %s", out)
            return {}
        self.space.export(self.best.vector, out)
        self.space.export(self.strategy.mean, self.run_dir / "adapter_last")
        log.info("exported the best-on-validation adapter (generation %d, validation %.4f) to %s; the last one to "
                 "%s", self.best.generation, self.best.score, out, self.run_dir / "adapter_last")
        return {"selected_generation": self.best.generation, "selected_validation_reward": self.best.score,
                "selected_adapter_sha256": self.space.digest(self.best.vector)}

    def log_start(self) -> None:
        sigma0 = initial_sigma(self.cfg, self.space)
        scores = self.evaluate_mean(self.strategy.mean)
        log.info("held-out reward at start: %.4f  (sigma0=%.4g)", scores["heldout_reward"], sigma0)
        self.metrics.write({"generation": 0, **scores, "sigma0": sigma0,
                            "adapter_sha256": self.space.digest(self.strategy.mean),
                            "packages": package_versions(self.cfg)})

    def step(self) -> tuple[dict, int]:
        """One generation on this rank; returns its metrics record and the stop code (0 = go on)."""
        cfg, comm, p, lam = self.cfg, self.comm, self.parts, self.cfg.strategy.population
        watch, sent0 = Stopwatch(), comm.bytes_sent
        with watch("step"):
            items = self.task.minibatch(self.generation, self.batch_size())              # seeds -> prompts
            with watch("ask"):
                mean_before = np.array(self.strategy.mean)  # a copy: tell moves the mean
                cands = self.strategy.ask()                                             # seeds -> candidates
            with watch("eval"):
                res = evaluate_population(p.rollout, self.space, p.rewarder, cands, items, cfg, comm,
                                          self.generation)                              # own groups only
            faults_local = p.faults.take_vector()
            with watch("comm"):                                                         # λ+5 floats
                summed = comm.allreduce_sum(np.concatenate([res.rewards_local, [res.new_tokens], faults_local]))
            rewards = summed[:lam]
            with watch("tell"):
                info = self.strategy.tell(rewards)                                      # same update everywhere
                self.space.after_tell(cands, self.strategy.space_update())
            self.generation += 1
            mean = self.strategy.mean
            digest = self.space.digest(mean)
            resynced = []
            if cfg.run.checksum_every and self.generation % cfg.run.checksum_every == 0:
                resynced = self.check_ranks_agree(digest)
                digest = self.space.digest(self.strategy.mean) if resynced else digest
            budget_used = self.budget_count(watch.elapsed("step"))
            budget_stop = budget.spent(comm, cfg.run.budget_s, budget_used)  # rank 0's count decides
            last = self.generation == cfg.run.generations or budget_stop
            record = {"generation": self.generation, "reward_mean": float(rewards.mean()),
                      "reward_max": float(rewards.max()), "reward_min": float(rewards.min()),
                      "reward_ties": int(lam - len(np.unique(rewards))), "new_tokens": int(summed[lam]),
                      "samples": lam * len(items),
                      "reward_faults": self.fault_record(summed[lam + 1:]), **info,
                      **generation_signal(rewards, *((cands, mean_before) if self.signal_dim else ()))}
            if last or (cfg.run.eval_every and self.generation % cfg.run.eval_every == 0):
                with watch("heldout"):
                    record.update(self.evaluate_mean(mean))
            stop = self.preempt.agree(comm)  # every rank, every generation: it is a collective
            stop = 0 if last else stop  # a finished run just finishes
        if cfg.run.budget_s:
            record["budget_used_s"] = budget_used
        if budget_stop:
            record["budget_stop"] = True
        if resynced:
            record["resynced_ranks"] = resynced
        record.update({f"{k}_s": v for k, v in watch.seconds.items()}, apply_s=res.apply_s, reward_s=res.reward_s,
                      adapter_sha256=digest,
                      bytes_sent=comm.bytes_sent - sent0)
        record["ckpt_s"] = None  # the copy inside the checkpoint cannot time itself
        if self.ckpt.due(self.generation, last, bool(stop)):
            self.metrics.stage(record)  # the checkpoint holds this generation's line too
            record["ckpt_s"] = self.ckpt.save(self.generation, self.checkpoint_parts(), cfg.to_dict())
        self.metrics.write(record)
        warning = self.signal.observe(record, self.signal_dim)
        if warning and comm.is_root:
            log.warning("generation %d: %s", self.generation, warning)
        return record, stop
