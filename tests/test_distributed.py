"""hdr_core.distributed: global batch norm on 2 gloo processes equals one BatchNorm2d on the whole batch."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hdr_core.distributed import GlobalBatchNorm2d, all_reduce_means, sync_batchnorm

C = 5


def _case(momentum):
    """The whole batch, the upstream gradient, and a batch norm with non-trivial affine parameters and buffers."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, C, 6, 7, generator=g) * 3 + 20  # a large mean: the variance must not cancel
    up = torch.randn(8, C, 6, 7, generator=g)
    bn = nn.BatchNorm2d(C, momentum=momentum)
    with torch.no_grad():
        bn.weight.copy_(torch.rand(C, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(C, generator=g))
        bn.running_mean.copy_(torch.randn(C, generator=g))
        bn.running_var.copy_(torch.rand(C, generator=g) + 0.5)
    return x, up, bn


def _reference(momentum):
    x, up, bn = _case(momentum)
    x.requires_grad_(True)
    y = None
    for _ in range(2):  # two steps: running statistics (and num_batches_tracked for momentum None) accumulate
        y = bn(x)
        (y * up).sum().backward()
    return {"y": y.detach(), "x_grad": x.grad, "w_grad": bn.weight.grad, "b_grad": bn.bias.grad,
            "running_mean": bn.running_mean, "running_var": bn.running_var}


def _rank(rank, world, init, out, split, momentum):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        x, up, bn = _case(momentum)
        net = nn.Sequential(bn)
        assert sync_batchnorm(net, torch.device("cpu")) == 1 and type(net[0]) is GlobalBatchNorm2d
        lo, hi = (0, split) if rank == 0 else (split, x.shape[0])
        xs = x[lo:hi].clone().requires_grad_(True)
        y = None
        for _ in range(2):
            y = net(xs)
            (y * up[lo:hi]).sum().backward()  # the global loss is the sum of the ranks' losses
        w, b = bn.weight.grad.clone(), bn.bias.grad.clone()
        dist.all_reduce(w)
        dist.all_reduce(b)
        save_file({"y": y.detach().contiguous(), "x_grad": xs.grad.contiguous(), "w_grad": w, "b_grad": b,
                   "running_mean": bn.running_mean, "running_var": bn.running_var}, f"{out}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("split,momentum", [(4, 0.1), (3, None)])
def test_global_batchnorm_on_two_processes_is_one_batchnorm_of_the_whole_batch(tmp_path, split, momentum):
    """Outputs, input and parameter gradients, running statistics: those of one BatchNorm2d over the 8 samples,
    also for unequal shares (3 + 5) and the cumulative average (momentum None)."""
    import torch.multiprocessing as mp

    init = f"file://{tmp_path / 'pg'}"
    mp.spawn(_rank, args=(2, init, str(tmp_path), split, momentum), nprocs=2, join=True)
    ref = _reference(momentum)
    r0, r1 = (load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2))
    for k in ("y", "x_grad"):
        torch.testing.assert_close(torch.cat([r0[k], r1[k]]), ref[k], rtol=1e-4, atol=1e-4, msg=k)
    for k in ("w_grad", "b_grad", "running_mean", "running_var"):
        for r in (r0, r1):
            torch.testing.assert_close(r[k], ref[k], rtol=1e-4, atol=1e-4, msg=k)
    # the per-rank statistics a plain BatchNorm2d would use are far from these: the test can tell them apart
    x, up, bn = _case(momentum)
    per_rank = torch.cat([bn(x[:split]), bn(x[split:])]).detach()
    assert (per_rank - ref["y"]).abs().max() > 1e-2


def test_global_batchnorm_without_a_process_group_is_batchnorm():
    x, _, bn = _case(0.1)
    plain = nn.BatchNorm2d(C)
    plain.load_state_dict(bn.state_dict())
    net = nn.Sequential(bn)
    sync_batchnorm(net, torch.device("cpu"))
    assert isinstance(net[0], GlobalBatchNorm2d) and net[0].weight is bn.weight  # converted in place
    torch.testing.assert_close(net(x), plain(x), rtol=0, atol=0)
    assert net[0].state_dict().keys() == plain.state_dict().keys()
    torch.testing.assert_close(net[0].running_mean, plain.running_mean, rtol=0, atol=0)
    net.eval(), plain.eval()
    torch.testing.assert_close(net(x), plain(x), rtol=0, atol=0)


def test_step_sampler_shares_cover_each_global_batch():
    """The sharding of training steps, validation and the pair pool's slots under DDP."""
    from hdr_core.train import StepSampler

    n, batch, world = 12, 4, 2
    local = batch // world
    shares = [list(StepSampler(0, n // batch, batch, local, r)) for r in range(world)]
    assert shares[0] == [0, 1, 4, 5, 8, 9] and shares[1] == [2, 3, 6, 7, 10, 11]
    assert sorted(shares[0] + shares[1]) == list(range(n))
    assert list(StepSampler(0, n // batch, batch, batch, 0)) == list(range(n))  # one process: everything, in order


def test_all_reduce_means_in_one_process():
    assert all_reduce_means({"b": [1.0, 3.0], "a": [2.0]}) == {"a": 2.0, "b": 2.0}
    assert all_reduce_means({}) == {}


def _ddp_grads(rank, init, out, sync):
    import torch.distributed as dist

    from hdr_core.models import create_model
    from hdr_core.train import TrainConfig, compute_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        net = create_model("lanet_small")
        if sync:
            sync_batchnorm(net, torch.device("cpu"))
        model = nn.parallel.DistributedDataParallel(net)
        batch = {k: v[4 * rank:4 * rank + 4] for k, v in _train_batch().items()}
        compute_loss(TrainConfig(stage="crop", model="lanet_small"), model, batch)[0].backward()
        if rank == 0:
            save_file({n: p.grad for n, p in net.named_parameters()}, f"{out}/grads.safetensors")
    finally:
        dist.destroy_process_group()


def _train_batch():
    g = torch.Generator().manual_seed(1)
    hdr = torch.rand(8, 3, 32, 32, generator=g) * 4
    return {"hdr": hdr, "ldr": (hdr / 2).clamp(0, 1)}


@pytest.mark.slow
def test_ddp_with_global_batchnorm_has_the_one_process_gradient(tmp_path):
    """The training loss of ``hdr_core.train`` through DDP on 2 gloo ranks (4 samples each): the gradient of one
    process on all 8, to float rounding; with per-rank batch norm it is another gradient."""
    import torch.multiprocessing as mp

    from hdr_core.models import create_model
    from hdr_core.train import TrainConfig, compute_loss

    def one_process(nudge=0.0):
        torch.manual_seed(0)
        net = create_model("lanet_small")
        g = torch.Generator().manual_seed(5)
        with torch.no_grad():
            for p in net.parameters() if nudge else []:
                p.mul_(1 + nudge * torch.randn(p.shape, generator=g))
        compute_loss(TrainConfig(stage="crop", model="lanet_small"), net, _train_batch())[0].backward()
        return {n: p.grad for n, p in net.named_parameters()}

    ref = one_process()

    def distance(got):
        num = sum(float((got[k] - ref[k]).square().sum()) for k in ref)
        return (num / sum(float(v.square().sum()) for v in ref.values())) ** 0.5

    def rel(sync):
        out = tmp_path / f"sync{sync}"
        out.mkdir()
        mp.spawn(_ddp_grads, args=(f"file://{out / 'pg'}", str(out), sync), nprocs=2, join=True)
        return distance(load_file(str(out / "grads.safetensors")))

    # "To float rounding": this untrained network's gradient is itself that sensitive to rounding. Nudging its weights
    # by 1e-7 of themselves (a float32 ulp or so) moves it by ~4e-3 on an AVX2 AMD EPYC, where DDP's gradient is
    # 2e-3 from one process's (sums in another order); per-rank batch norm is ~0.7 away.
    tol = max(1e-4, 3 * distance(one_process(nudge=1e-7)))
    assert rel(True) < tol < 0.1 < rel(False)


def _shm_grads(rank, world, init, out, folder):
    import torch.distributed as dist

    from hdr_core.distributed import shared_memory_all_reduce
    from hdr_core.models import create_model
    from hdr_core.train import TrainConfig, compute_loss

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        cfg, grads = TrainConfig(stage="crop", model="lanet_small"), {}
        batch = _train_batch()
        for name in ("gloo", "shm"):
            torch.manual_seed(0)
            net = create_model("lanet_small")
            model = nn.parallel.DistributedDataParallel(net, gradient_as_bucket_view=True)
            if name == "shm":
                assert shared_memory_all_reduce(model, folder) == ""
                assert "MiB free" in shared_memory_all_reduce(model, f"{folder}/missing")  # no room: gloo's
            for step in range(3):  # DDP rebuilds its buckets after step 1; the two slots alternate
                net.zero_grad()
                part = {k: v[(rank + step) % world::world] for k, v in batch.items()}
                compute_loss(cfg, model, part)[0].backward()
            grads.update({f"{name}/{n}": p.grad.clone() for n, p in net.named_parameters()})
        save_file(grads, f"{out}/rank{rank}.safetensors")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("world", [2, 3])
def test_shared_memory_all_reduce_sums_as_gloo_does(tmp_path, world):
    """The shared-memory all-reduce gives every rank the same gradients, those of gloo's all-reduce: the same bits on
    2 ranks (a + b either way), equal to float rounding on 3 (another order of the sum); nothing is left behind in its
    folder; a folder without room leaves gloo in place."""
    import torch.multiprocessing as mp

    folder = tmp_path / "shm"
    folder.mkdir()
    mp.spawn(_shm_grads, args=(world, f"file://{tmp_path / 'pg'}", str(tmp_path), str(folder)), nprocs=world,
             join=True)
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(world)]
    names = [k.removeprefix("shm/") for k in ranks[0] if k.startswith("shm/")]
    assert names and list(folder.iterdir()) == []
    for r in ranks[1:]:
        assert all(torch.equal(r[f"shm/{n}"], ranks[0][f"shm/{n}"]) for n in names)
    for n in names:
        gloo, shm = ranks[0][f"gloo/{n}"], ranks[0][f"shm/{n}"]
        if world == 2:
            assert torch.equal(shm, gloo), n
        else:
            torch.testing.assert_close(shm, gloo, rtol=1e-5, atol=1e-7, msg=n)
    assert any(float(ranks[0][f"shm/{n}"].abs().sum()) > 0 for n in names)
