"""Where and how a rank runs: its launcher environment, the one MPI class, seeds, signals,
the run directory and its logs. Nothing here imports torch or knows the model."""
