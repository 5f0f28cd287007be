"""The one interface over MPI: only scalars cross ranks.

``Comm`` counts the bytes this rank contributes, so tests can assert that no model state
is ever sent, and hands the transfer to a transport: mpi4py's buffer calls (a pickled
bcast of 100 MB took 0.16-1.9 s), none in a single process, or any object with the same
five methods (the in-process tests run two ranks as threads that way).
"""
from __future__ import annotations

import hashlib
import os

import numpy as np


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
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPITransport(MPI.COMM_WORLD)


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
