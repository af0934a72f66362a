"""What DDP training needs beyond ``torch.nn.parallel.DistributedDataParallel`` to match one process.

* :func:`sync_batchnorm`: batch norm statistics over the **global** batch. Under DDP each rank sees
  ``batch_size / world`` samples, and a plain ``BatchNorm2d`` normalises with that half (or quarter) batch's mean and
  variance: a different training from the one-process run of the same config (and, at panoLANet's stage-2 batch of
  4 on 2 ranks, statistics of 2 panoramas). On CUDA this is PyTorch's ``nn.SyncBatchNorm``; PyTorch's refuses CPU
  tensors, so on the CPU (gloo) :class:`GlobalBatchNorm2d` does the same with one all-reduce per layer forward
  (channel sums of x and x^2 in float64, from each rank's own mean and variance: no cancellation) and one backward,
  around PyTorch's fused batch norm kernels.
* :func:`all_reduce_means`: validation split over the ranks like a training step (``hdr_core.train.StepSampler``),
  its per-batch figures summed over the ranks: the same pairs and the same means as one process, each pair evaluated
  once.
* :class:`SharedMemoryAllReduce`: DDP's gradient all-reduce through shared memory when every rank is a CPU process
  of one machine. gloo sends the gradients over TCP loopback (15 MB in ~15 ms on the project's machine); writing
  them to a shared page and adding the ranks' copies takes ~5 ms. The same sums as gloo's on 2 ranks, bit for bit.
"""

from __future__ import annotations

import os
import socket
import uuid

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F


class _GlobalBatchNorm(torch.autograd.Function):
    """Training-mode batch norm with the statistics of every rank's samples: one all-reduce forward, one backward.

    Forward: each rank's channel mean and variance (``torch.var_mean``), turned into float64 sums of x and x^2 and
    the sample count, summed over the ranks; the output is the fused ``F.batch_norm`` with those statistics.
    Backward: this rank's ``sum(dy)`` and ``sum(dy * xhat)`` (the fused ``native_batch_norm_backward`` at the global
    statistics: also the affine parameters' local gradients, which DDP then averages), summed over the ranks, give
    ``dx = w / std * (dy - sum(dy) / N - xhat * sum(dy * xhat) / N)``, the gradient of the sum of the ranks' losses,
    as PyTorch's ``SyncBatchNorm`` computes it.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):
        xf, c = x.float(), x.shape[1]
        local_n = xf.numel() // c
        var_l, mean_l = torch.var_mean(xf, dim=(0, 2, 3), correction=0)
        m = mean_l.double()
        stats = torch.cat([m * local_n, (var_l.double() + m.square()) * local_n,
                           torch.full((1,), float(local_n), dtype=torch.float64)])
        dist.all_reduce(stats)
        n = float(stats[-1])
        mean64 = stats[:c] / n
        var64 = (stats[c:2 * c] / n - mean64.square()).clamp_min(0.0)
        mean, var = mean64.float(), var64.float()
        invstd = torch.rsqrt(var + eps)
        y = F.batch_norm(xf, mean, var, weight, bias, False, 0.0, eps)
        ctx.save_for_backward(xf, weight, mean, invstd)
        ctx.n, ctx.eps, ctx.dtype = n, eps, x.dtype
        unbiased = var64 * (n / max(n - 1.0, 1.0))
        ctx.mark_non_differentiable(mean, unbiased)
        return y.to(x.dtype), mean, unbiased

    @staticmethod
    def backward(ctx, dy, _mean, _var):
        xf, weight, mean, invstd = ctx.saved_tensors
        dyf, c, n = dy.float(), xf.shape[1], ctx.n
        w = weight.float() if weight is not None else torch.ones_like(mean)
        _, g_w, g_b = torch.ops.aten.native_batch_norm_backward(dyf, xf, w, None, None, mean, invstd, True, ctx.eps,
                                                                 [False, True, True])
        sums = torch.cat([g_b, g_w])
        dist.all_reduce(sums)
        sum_dy, sum_dy_xhat = sums[:c], sums[c:]
        k_dy = w * invstd
        k_x = -k_dy * invstd * sum_dy_xhat / n
        k_1 = k_dy * (mean * invstd * sum_dy_xhat - sum_dy) / n
        shape = (1, c, 1, 1)
        dx = torch.addcmul(xf * k_x.view(shape) + k_1.view(shape), dyf, k_dy.view(shape))
        return (dx.to(ctx.dtype), g_w if weight is not None and ctx.needs_input_grad[1] else None,
                g_b if ctx.needs_input_grad[2] else None, None)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of the whole DDP batch (any device, any backend).

    The same parameters and buffers as ``BatchNorm2d`` (a converted module saves and loads as one); outside training,
    or without a process group of more than one rank, it *is* ``BatchNorm2d``. In training: mean and biased variance
    over every rank's samples, running statistics updated with the unbiased variance, as ``F.batch_norm`` does them.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        y, mean, var = _GlobalBatchNorm.apply(x, self.weight, self.bias, self.eps)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                f = 1.0 / float(self.num_batches_tracked.item()) if self.momentum is None else self.momentum
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), f)
                self.running_var.lerp_(var.to(self.running_var.dtype), f)
        return y


def sync_batchnorm(module: nn.Module, device: torch.device) -> int:
    """Make every ``BatchNorm2d`` of ``module`` (in place, the same parameter objects) normalise with the global
    batch's statistics; returns how many. CUDA: ``nn.SyncBatchNorm``; elsewhere :class:`GlobalBatchNorm2d`."""
    bns = [m for m in module.modules() if type(m) is nn.BatchNorm2d]
    if device.type == "cuda":
        nn.SyncBatchNorm.convert_sync_batchnorm(module)  # replaces the children in place (module is no norm)
    else:
        for m in bns:
            m.__class__ = GlobalBatchNorm2d  # the same state: only forward changes
    return len(bns)


def all_reduce_means(values: dict[str, list[float]]) -> dict[str, float]:
    """Means of per-batch figures over every rank's batches (equal batch sizes: the means over all items)."""
    keys = sorted(values)
    sums = torch.tensor([[sum(values[k]), len(values[k])] for k in keys], dtype=torch.float64).reshape(-1, 2)
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(sums)
    return {k: float(s / c) for k, (s, c) in zip(keys, sums.tolist()) if c}


class SharedMemoryAllReduce:
    """The state of a DDP communication hook that all-reduces each gradient bucket through shared memory, for CPU
    processes of one machine (:func:`shared_memory_all_reduce` registers it).

    Each rank writes its bucket divided by the world size (as DDP's own all-reduce does) into its slot of a mapped
    file in ``/dev/shm``, waits at a barrier until every rank has written, and sums the slots in rank order into the
    bucket: every rank gets the same bits. On 2 ranks the sum ``a + b`` is gloo's (IEEE addition commutes), so a
    training run keeps its bits (tested); on more ranks it is equal to float rounding. Two slots per rank, used in
    turn, let a rank write the next step's bucket while another still reads this one: one barrier per bucket.
    Each file is unlinked as soon as every rank has mapped it, so nothing is left in ``/dev/shm`` after a crash.
    """

    def __init__(self, folder: str = "/dev/shm"):
        self.rank, self.world = dist.get_rank(), dist.get_world_size()
        name = [f"{folder}/hdr_core_allreduce_{os.getpid()}_{uuid.uuid4().hex[:8]}" if self.rank == 0 else None]
        dist.broadcast_object_list(name)
        self.prefix = name[0]
        self.slots: dict[tuple, torch.Tensor] = {}
        self.calls: dict[tuple, int] = {}

    def _slots(self, key: tuple, t: torch.Tensor) -> torch.Tensor:
        if key not in self.slots:
            # DDP rebuilds its buckets after the first step: the mapping this bucket index had before is unmapped
            # here (every rank does the same; the pages go when the last rank lets go of them)
            for old in [k for k in self.slots if k[0] == key[0]]:
                del self.slots[old], self.calls[old]
            path = f"{self.prefix}_{'_'.join(map(str, key))}"
            nbytes = 2 * self.world * t.numel() * t.element_size()
            storage = torch.UntypedStorage.from_file(path, shared=True, nbytes=nbytes)  # created by whoever is first
            self.slots[key] = torch.tensor([], dtype=t.dtype).set_(storage).view(2, self.world, t.numel())
            dist.barrier()  # every rank has mapped it
            if self.rank == 0:
                os.unlink(path)
        return self.slots[key]

    def all_reduce(self, bucket) -> torch.Tensor:
        """The summed bucket (in place)."""
        t = bucket.buffer()
        key = (bucket.index(), t.numel(), str(t.dtype).removeprefix("torch."))
        slots = self._slots(key, t)
        turn = self.calls.get(key, 0)
        self.calls[key] = turn + 1
        slots = slots[turn % 2]
        torch.div(t, self.world, out=slots[self.rank])
        dist.barrier()  # every rank has written this turn's slot (and read the other turn's, the turn before)
        torch.add(slots[0], slots[1], out=t)
        for r in range(2, self.world):
            t.add_(slots[r])
        return t


def _shared_memory_hook(state: SharedMemoryAllReduce, bucket):  # no return annotation: DDP checks its object
    """DDP communication hook: ``state`` all-reduces ``bucket``; the future is done when it returns."""
    fut = torch.futures.Future()
    fut.set_result(state.all_reduce(bucket))
    return fut


def shared_memory_all_reduce(ddp: nn.parallel.DistributedDataParallel, folder: str = "/dev/shm") -> str:
    """Register :class:`SharedMemoryAllReduce` on ``ddp`` where it applies; returns why not, or ``""`` if it did.

    It applies to CPU parameters, every rank on this machine (the same host name), and ``folder`` with room for the
    slots (twice the gradients per rank, and twice that again: DDP rebuilds its buckets after the first step).
    Collective: every rank must call it."""
    params = [p for p in ddp.module.parameters() if p.requires_grad]
    world = dist.get_world_size()
    hosts = [None] * world
    dist.all_gather_object(hosts, socket.gethostname())
    need = 4 * world * sum(p.numel() * p.element_size() for p in params)
    try:
        st = os.statvfs(folder)
        room = st.f_bavail * st.f_frsize
    except OSError:
        room = 0
    reasons = [r for r, bad in (("the parameters are not on the CPU", any(p.device.type != "cpu" for p in params)),
                                ("the ranks are on several machines", len(set(hosts)) > 1),
                                (f"{folder} has {room / 2**20:.0f} MiB free, {need / 2**20:.0f} MiB needed",
                                 room < need)) if bad]
    flags = torch.tensor([float(bool(reasons))])
    dist.all_reduce(flags)  # one rank without room: all stay on the backend's all-reduce
    if flags.item():
        return "; ".join(reasons) or "another rank cannot use it"
    ddp.register_comm_hook(SharedMemoryAllReduce(folder), _shared_memory_hook)
    return ""


__all__ = ["GlobalBatchNorm2d", "SharedMemoryAllReduce", "all_reduce_means", "shared_memory_all_reduce",
           "sync_batchnorm"]
