"""Symmetric image-text InfoNCE loss, gathered across ranks (CLIP / SegCLIP), via open_clip's ClipLoss."""
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from open_clip.loss import ClipLoss
from torch import Tensor

from mmseg_ovs.utils.precision import float32_region


def _world() -> tuple:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@MODELS.register_module()
class ContrastiveLoss(nn.Module):
    """Symmetric InfoNCE between L2-normalised image and text features.

    ``logits_t2v = s * t_local @ v_all^T``, ``logits_v2t = s * v_local @ t_all^T``,
    labels ``arange(B) + B * rank``; ``loss = (CE(t2v) + CE(v2t)) / 2`` (SegCLIP / CLIP).
    Computed by ``open_clip.loss.ClipLoss(local_loss=True, gather_with_grad=True)``: the features
    of all ranks are all-gathered with gradients (``torch.distributed.nn.all_gather``, whose
    backward sums every rank's gradient into the local slice, as ``diffdist`` in the official
    SegCLIP code); equal batch per rank. Features, logits and CE are float32 (autocast disabled).

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
        with float32_region(image_feats.device.type):  # logits at scale 100: fp32 under autocast
            v = F.normalize(image_feats.float(), dim=-1)
            t = F.normalize(text_feats.float(), dim=-1)
            rank, world = _world() if self.gather else (0, 1)
            clip_loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world)
            logits_v2t, logits_t2v = clip_loss.get_logits(v, t, logit_scale)
            labels = clip_loss.get_ground_truth(v.device, logits_v2t.shape[0])
            loss = (F.cross_entropy(logits_t2v, labels) + F.cross_entropy(logits_v2t, labels)) / 2
        loss = self.loss_weight * loss
        if return_logits:
            return loss, dict(logits_t2v=logits_t2v, logits_v2t=logits_v2t, labels=labels)
        return loss
