"""The one interface over the ranks: only scalars cross them.

``Comm`` counts the bytes this rank contributes, so tests can assert that no model state
is ever sent, and hands the transfer to a transport: mpi4py's buffer calls for ES (a pickled
bcast of 100 MB took 0.16-1.9 s), torch.distributed's default group for the data-parallel
baselines under torchrun (whose gradients DDP averages on its own), none in a single
process, or any object with the same methods (the in-process tests run two ranks as threads
that way). One class, so ES and the baselines agree on a stop decision the same way.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from essa_hpc.runtime.launchers import mpi_env_defaults


class MPITransport:
    """mpi4py buffer collectives on a communicator (``MPI.COMM_WORLD`` by default)."""

    def __init__(self, mpi_comm):
        self.comm = mpi_comm
        self.rank, self.world = mpi_comm.Get_rank(), mpi_comm.Get_size()

    def allreduce(self, values: np.ndarray, op: str) -> np.ndarray:
        from mpi4py import MPI
        out = np.empty_like(values)
        self.comm.Allreduce(values, out, op={"sum": MPI.SUM, "max": MPI.MAX}[op])
        return out

    def allgather(self, values: np.ndarray) -> np.ndarray:
        every = np.empty((self.world, *values.shape), dtype=values.dtype)
        self.comm.Allgather(values, every)
        return every

    def bcast(self, values: np.ndarray, root: int) -> None:
        self.comm.Bcast(values, root=root)

    def barrier(self) -> None:
        self.comm.Barrier()

    def finalize(self) -> None:
        from mpi4py import MPI
        if not MPI.Is_finalized():
            self.comm.Barrier()
            MPI.Finalize()

    def abort(self, code: int) -> None:
        self.comm.Abort(code)


def _mpi_transport() -> MPITransport | None:
    # mpi4py is optional: a workstation without MPI runs single-process.
    if os.environ.get("ESSA_NO_MPI") == "1":
        return None
    os.environ.update(mpi_env_defaults(os.environ))  # read by MPI_Init, which the import below runs
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPITransport(MPI.COMM_WORLD)


class TorchDistributedTransport:
    """torch.distributed collectives on the default process group (torchrun): gloo on CPU, nccl on
    GPUs, where the tensors live on this rank's GPU. The group belongs to torchrun: not ended here."""

    def __init__(self):
        import torch
        import torch.distributed as dist

        self.dist, self.torch = dist, torch
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        self.device = f"cuda:{torch.cuda.current_device()}" if dist.get_backend() == "nccl" else "cpu"

    def _tensor(self, values: np.ndarray):
        # uint64 (digests) travels as int64: torch's collectives do not take unsigned 64-bit tensors
        flat = values.view(np.int64) if values.dtype == np.uint64 else values
        return self.torch.from_numpy(np.ascontiguousarray(flat).copy()).to(self.device)

    def _array(self, tensor, like: np.ndarray) -> np.ndarray:
        out = tensor.cpu().numpy()
        return out.view(np.uint64) if like.dtype == np.uint64 else out

    def allreduce(self, values: np.ndarray, op: str) -> np.ndarray:
        t = self._tensor(values)
        self.dist.all_reduce(t, op={"sum": self.dist.ReduceOp.SUM, "max": self.dist.ReduceOp.MAX}[op])
        return self._array(t, values)

    def allgather(self, values: np.ndarray) -> np.ndarray:
        t = self._tensor(values)
        every = [self.torch.empty_like(t) for _ in range(self.world)]
        self.dist.all_gather(every, t)
        return np.stack([self._array(x, values) for x in every])

    def bcast(self, values: np.ndarray, root: int) -> None:
        t = self._tensor(values)
        self.dist.broadcast(t, src=root)
        values[...] = self._array(t, values)

    def barrier(self) -> None:
        self.dist.barrier()

    def finalize(self) -> None:
        pass

    def abort(self, code: int) -> None:
        pass  # torchrun's agent ends the other processes when this one exits non-zero


def torch_distributed_comm() -> "Comm":
    """A Comm over torch.distributed's default group when one is running (torchrun), else one process."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return Comm(transport=TorchDistributedTransport())
    return Comm(use_mpi=False)


class Comm:
    def __init__(self, mpi_comm=None, use_mpi: bool = True, transport=None):
        """``transport``: who moves the bytes; default MPI (``mpi_comm``, else COMM_WORLD) when
        mpi4py is present and ``use_mpi``, else none (a single process)."""
        if transport is None and mpi_comm is not None:
            transport = MPITransport(mpi_comm)
        elif transport is None and use_mpi:
            transport = _mpi_transport()
        self._t = transport
        self.rank = transport.rank if transport else 0
        self.world = transport.world if transport else 1
        self.bytes_sent = 0

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def allreduce_sum(self, values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values, dtype=np.float64)
        self.bytes_sent += values.nbytes
        return self._t.allreduce(values, "sum") if self._t else values.copy()

    def agree_max(self, value: int) -> int:
        """The largest of every rank's ``value`` (a stop code, a flag), on every rank."""
        # int32 rather than bool: MPI reductions on C bool are not portable.
        buf = np.array([int(value)], dtype=np.int32)
        self.bytes_sent += buf.nbytes
        return int(self._t.allreduce(buf, "max")[0]) if self._t else int(value)

    def any(self, flag: bool) -> bool:
        return bool(self.agree_max(1 if flag else 0))

    def root_decides(self, flag: bool) -> bool:
        """Rank 0's ``flag`` on every rank, the others' ignored: a decision made on rank 0's clock or
        records, so that every rank acts on it at the same step (4 bytes)."""
        return self.any(self.is_root and bool(flag))

    def mean_of_present(self, value: float | None) -> float | None:
        """The mean over the ranks that hold a ``value`` (None where none does); 16 bytes."""
        summed = self.allreduce_sum(np.array([0.0 if value is None else float(value), value is not None]))
        return float(summed[0] / summed[1]) if summed[1] > 0 else None

    def flagged_ranks(self, flag: bool) -> list[int]:
        """The ranks whose ``flag`` is set, on every rank (setup-time error agreement)."""
        mine = np.array([1 if flag else 0], dtype=np.int32)
        self.bytes_sent += mine.nbytes
        if not self._t:
            return [0] if flag else []
        every = self._t.allgather(mine)[:, 0]
        return [r for r in range(self.world) if every[r]]

    def mismatched_ranks(self, digest: str) -> list[int]:
        """Ranks whose digest differs from rank 0's; every rank gets the same answer."""
        mine = np.frombuffer(hashlib.sha256(digest.encode()).digest()[:8], dtype=np.uint64).copy()
        self.bytes_sent += mine.nbytes
        if not self._t:
            return []
        every = self._t.allgather(mine)[:, 0]
        return [r for r in range(self.world) if every[r] != every[0]]

    def bcast_array(self, values: np.ndarray, root: int = 0) -> np.ndarray:
        """Resync only: copy root's array to every rank (not used in the normal loop)."""
        values = np.ascontiguousarray(values)
        if self.rank == root:
            self.bytes_sent += values.nbytes
        if self._t:
            self._t.bcast(values, root)
        return values

    def barrier(self) -> None:
        if self._t:
            self._t.barrier()

    def finalize(self) -> None:
        """End MPI cleanly now. Needed before a job requeues itself from inside a rank: a step
        killed mid-finalize leaves MPICH shared memory behind that the requeued step (same
        job and step id) then trips over in MPI_Init."""
        if self._t:
            self._t.finalize()
            self._t = None

    def abort(self, code: int = 1) -> None:
        if self._t and self.world > 1:
            self._t.abort(code)
        raise SystemExit(code)
