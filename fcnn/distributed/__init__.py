"""Synchronous data-parallel training: replicas, batch sharding, gradient buffers, MPI.

A training step on N replicas (processes) gives each replica a disjoint shard of
the same global batch; every replica computes its shard's share of the global
loss with the same pure functions, and one sum over the replicas (an MPI
Allreduce of one flat buffer) turns the shares into the global gradient. Every
replica then applies the same optimizer update, so parameters stay identical.

- :mod:`fcnn.distributed.replicas`: the :class:`Replicas` interface and the
  single-process one;
- :mod:`fcnn.distributed.sharding`: which part of a batch a replica takes;
- :mod:`fcnn.distributed.buffers`: a tree of arrays as one contiguous buffer;
- :mod:`fcnn.distributed.mpi`: replicas over MPI (mpi4py);
- :mod:`fcnn.distributed.launch`: the ``mpiexec`` command line of ``--procs N``;
- :mod:`fcnn.distributed.threads`: inference batches split over threads of one process.
"""

from fcnn.distributed.buffers import from_buffer, to_buffer
from fcnn.distributed.replicas import SINGLE, Replicas, SingleReplica
from fcnn.distributed.sharding import shard_slice

__all__ = ["SINGLE", "Replicas", "SingleReplica", "from_buffer", "shard_slice", "to_buffer"]
