"""Sinkhorn-Knopp equipartition used by PixelCLIP's online clustering.

Reproduces ``PixelCLIP.distributed_sinkhorn`` (cvlab-kaist/PixelCLIP ``pixelclip.py:199-227``):
the initial transport plan is the *row softmax* of the logits (not SwAV's ``exp(logits / eps)``;
at EPS = 100 the two give different assignments), 3 iterations, and under DDP only the two sums
(total mass and per-cluster row sums) are all-reduced; the per-mask normalisation stays local.
"""
import torch
import torch.distributed as dist

from mmseg_ovs.utils.precision import float32_region


def _all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t)
    return t


@torch.no_grad()
def distributed_sinkhorn(logits: torch.Tensor, n_iters: int = 3) -> torch.Tensor:
    """Soft equipartitioned assignment of N masks to k clusters.

    Args:
        logits (Tensor): (N, k) ``EPS * cos(mask feature, cluster embedding)``. N may be 0 on
            some ranks: that rank still joins every all-reduce so DDP does not hang.
        n_iters (int): Sinkhorn iterations (official: 3).

    Returns:
        Tensor: (N, k) float32 assignment, rows sum to 1 (argmax = hard assignment). Always computed
        in float32 with autocast disabled.
    """
    with float32_region(logits.device.type):
        return _sinkhorn(logits.float(), n_iters)


def _sinkhorn(logits: torch.Tensor, n_iters: int) -> torch.Tensor:
    n_local, k = logits.shape
    q = torch.softmax(logits, dim=1).t()  # (k, N)
    total = _all_reduce_sum(q.sum().reshape(1))  # = number of masks on all ranks
    if float(total) <= 0:
        return q.t().contiguous()
    q = q / total
    for _ in range(n_iters):
        row = _all_reduce_sum(q.sum(dim=1, keepdim=True))  # (k, 1) global cluster mass
        q = q / row.clamp_min(torch.finfo(q.dtype).tiny)
        q = q / max(n_local, 1)  # official divides by N_local here (cancelled by the next step)
        q = q / q.sum(dim=0, keepdim=True)
        q = q / total
    q = q * total
    return q.t().contiguous()
