"""Symmetric image-text InfoNCE loss, gathered across ranks (CLIP / SegCLIP)."""
from typing import Tuple

import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sums every rank's gradient and returns the local slice
    (what ``diffdist.all_gather`` does in the official code). Equal batch per rank."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        out = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(out, x.contiguous())
        ctx.rank, ctx.batch = dist.get_rank(), x.shape[0]
        return torch.cat(out, dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.batch:(ctx.rank + 1) * ctx.batch]


def all_gather_with_grad(x: Tensor) -> Tuple[Tensor, int]:
    """Concatenate ``x`` (B, ...) from all ranks along dim 0; gradients flow back to every
    rank's local part. Returns the gathered tensor and the local rank (0 if not distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    return _AllGatherWithGrad.apply(x), dist.get_rank()


@MODELS.register_module()
class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between L2-normalised image and text features.

    ``logits_t2v = s * t_local @ v_all^T``, ``logits_v2t = s * v_local @ t_all^T``,
    labels ``arange(B) + B * rank``; ``loss = (CE(t2v) + CE(v2t)) / 2`` (SegCLIP / CLIP).

    Args:
        gather (bool): all-gather features across ranks under DDP. Default True.
        loss_weight (float): weight. Default 1.0.
        loss_name (str): key in the loss dict. Default 'loss_contrastive'.
    """

    def __init__(self, gather: bool = True, loss_weight: float = 1.0,
                 loss_name: str = 'loss_contrastive'):
        super().__init__()
        self.gather = gather
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, image_feats: Tensor, text_feats: Tensor, logit_scale: Tensor,
                return_logits: bool = False):
        """
        Args:
            image_feats, text_feats: (B, E) un-normalised features of matching pairs.
            logit_scale: the multiplier s (already exp'ed and clamped).
        """
        v = F.normalize(image_feats, dim=-1)
        t = F.normalize(text_feats, dim=-1)
        if self.gather:
            v_all, rank = all_gather_with_grad(v)
            t_all, _ = all_gather_with_grad(t)
        else:
            v_all, t_all, rank = v, t, 0
        B = v.shape[0]
        labels = torch.arange(B, device=v.device) + B * rank
        logits_t2v = logit_scale * t @ v_all.t()
        logits_v2t = logit_scale * v @ t_all.t()
        loss = (F.cross_entropy(logits_t2v, labels) + F.cross_entropy(logits_v2t, labels)) / 2
        loss = self.loss_weight * loss
        if return_logits:
            return loss, dict(logits_t2v=logits_t2v, logits_v2t=logits_v2t, labels=labels)
        return loss
