"""essa_hpc: align LLMs with evolution strategies (ESSA, arXiv 2507.04453) as an MPI/SLURM batch job."""
__version__ = "0.1.0"
