"""The no-progress guard: the third start of one scheduler job at one generation is refused in
one line with exit code 3 (so the job ends instead of requeueing again); other jobs, and runs
without a job, start as usual."""
from helpers import TINY, cli_env, essa

from essa_hpc.runtime.starts import EXIT_NO_PROGRESS, no_progress_reason, read_starts


def start(run, job_id, gens=2):
    env = cli_env(SLURM_JOB_ID=job_id, SLURM_RESTART_COUNT="0") if job_id else cli_env()
    return essa(["train", str(TINY), f"run.generations={gens}", "run.eval_every=0", "--run-dir", str(run)],
                env=env, check=False)


def test_the_rule():
    at = lambda job, gen: {"job_id": job, "generation": gen}  # noqa: E731
    assert no_progress_reason([at("7", 4), at("7", 4)], "7", 4).startswith("no progress: job 7 started 3 times at "
                                                                            "generation 4")
    assert no_progress_reason([at("7", 4), at("7", 4)], "8", 4) is None      # a new submission
    assert no_progress_reason([at("7", 3), at("7", 4)], "7", 4) is None      # the job did progress
    assert no_progress_reason([at("7", 4)], "7", 4) is None                  # one restart only
    assert no_progress_reason([at(None, 4), at(None, 4)], None, 4) is None   # by hand: never refused


def test_a_job_that_keeps_starting_at_one_generation_is_stopped_and_status_says_why(tmp_path):
    run = tmp_path / "run"
    assert start(run, "41").returncode == 0  # generations 0..2, finished
    # The finished run resumes at generation 2 each time, as a job crashing right after its resume would
    for attempt in range(2):
        assert start(run, "42").returncode == 0
    refused = start(run, "42")
    assert refused.returncode == EXIT_NO_PROGRESS, refused.stderr[-2000:]
    assert refused.stderr.strip() == ("essa-hpc train: error: no progress: job 42 started 3 times at generation 2 "
                                      "without finishing a generation; stopping instead of requeueing again. Look at "
                                      "the job's log for why each start ended, then submit a new job (it resumes "
                                      "from the same checkpoint)")
    assert [s["job_id"] for s in read_starts(run)] == ["41", "42", "42", "42"]
    status = essa(["status", str(run)]).stdout
    assert '"stopped": "no progress: job 42 started 3 times' in status and '"count": 4' in status
    assert start(run, "43").returncode == 0  # a new job starts
    assert start(run, None).returncode == 0 and start(run, None).returncode == 0 and start(run, None).returncode == 0
