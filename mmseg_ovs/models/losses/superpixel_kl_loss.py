"""SegCLIP superpixel consistency loss (symmetric KL between assignments and their
superpixel averages). The per-patch label derivation lives in mmseg_ovs/datasets/superpixel_labels.py."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_ovs.utils.precision import float32_region
from mmseg_ovs.datasets.superpixel_labels import superpixel_patch_labels  # noqa: F401 (moved; re-exported)

from ..necks.semantic_group_neck import hard_gumbel_assign


def region_mean(assign: Tensor, labels: Tensor, dense_max_tokens: int = 2048) -> Tensor:
    """Mean of ``assign`` (B, N, L) over all tokens sharing a label (B, N).

    ``(S @ assign) / S.sum(-1)`` with S_ij = [label_i == label_j] (the official form, one
    batched matmul, no host sync) up to ``dense_max_tokens`` tokens; beyond that (dense
    heads: N = H*W) the same mean by scatter over the unique labels, in O(N L)."""
    B, N, L = assign.shape
    if N <= dense_max_tokens:
        same = (labels[:, :, None] == labels[:, None, :]).to(assign.dtype)
        return (same @ assign) / same.sum(-1, keepdim=True).clamp_min(1)
    offset = torch.arange(B, device=labels.device).unsqueeze(1) * (labels.max() + 1 -
                                                                 labels.min())
    ids = (labels - labels.min() + offset).reshape(-1)
    uniq, inv = torch.unique(ids, return_inverse=True)
    flat = assign.reshape(B * N, L)
    sums = flat.new_zeros(len(uniq), L).index_add_(0, inv, flat)
    counts = torch.bincount(inv, minlength=len(uniq)).to(flat.dtype).unsqueeze(1)
    return (sums / counts)[inv].reshape(B, N, L)


@MODELS.register_module()
class SuperpixelKLLoss(nn.Module):
    """Symmetric KL between token assignments and their superpixel-averaged version.

    With M (B, N, L) the (straight-through hard) assignment of N tokens over L slots and
    M_bar its mean over each token's superpixel, P = softmax(M_bar), Q = softmax(M)
    (over L): ``loss = (KL(P||Q) + KL(Q||P)).sum() / (2 * B * N * L)`` (SegCLIP).

    Usable in any mmseg decode head's ``loss_decode``: called as ``loss(seg_logits,
    seg_label)`` with logits (B, K, H, W) and region ids (B, H, W), it takes the hard
    Gumbel-softmax over K (training) or the hard argmax (eval) as M.

    Precision: computed in float32 with autocast disabled (region means, log-softmax, KL).

    Args:
        input_type (str): 'logits' (pred = assignment logits, the hard Gumbel assignment
            is taken here) or 'assign' (pred = an assignment already). Default 'assign'.
        tau (float): Gumbel temperature for ``input_type='logits'``.
        loss_weight (float): weight. Default 1.0.
        loss_name (str): key in the loss dict. Default 'loss_superpixel_kl'.
    """

    def __init__(self, input_type: str = 'assign', tau: float = 0.9,
                 loss_weight: float = 1.0, loss_name: str = 'loss_superpixel_kl'):
        super().__init__()
        assert input_type in ('logits', 'assign'), input_type
        self.input_type = input_type
        self.tau = tau
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    @property
    def loss_name(self) -> str:
        return self._loss_name

    def forward(self, pred: Tensor, target: Tensor, weight=None,
                ignore_index: Optional[int] = None, gumbel_noise: Optional[Tensor] = None,
                return_parts: bool = False, **kwargs):
        """
        Args:
            pred: (B, L, N) or (B, L, H, W) assignment (logits), slot axis = 1.
            target: (B, N), (B, h, w) or (B, H, W) integer superpixel / region ids.
            ignore_index: tokens with this id are left out (normaliser counts the rest).
            gumbel_noise: injected Gumbel noise like ``pred`` (``input_type='logits'``).
        """
        with float32_region(pred.device.type):
            return self._forward(pred.float(), target, ignore_index,
                                 None if gumbel_noise is None else gumbel_noise.float(), return_parts)

    def _forward(self, pred, target, ignore_index, gumbel_noise, return_parts):
        B, L = pred.shape[:2]
        if self.input_type == 'logits':
            pred, _ = hard_gumbel_assign(pred, self.tau, 1, self.training, gumbel_noise)
        m = pred.reshape(B, L, -1).transpose(1, 2)  # (B, N, L)
        labels = target.reshape(B, -1).long()
        if labels.shape[1] != m.shape[1]:
            raise ValueError(f'{labels.shape[1]} labels for {m.shape[1]} tokens')
        valid = None
        if ignore_index is not None:
            valid = labels != ignore_index
            if bool(valid.all()):
                valid = None
        m_bar = region_mean(m, labels)
        log_p, log_q = F.log_softmax(m_bar, -1), F.log_softmax(m, -1)
        p, q = log_p.exp(), log_q.exp()
        kl1, kl2 = p * (log_p - log_q), q * (log_q - log_p)
        if valid is not None:
            kl1, kl2 = kl1 * valid[..., None], kl2 * valid[..., None]
            norm = valid.sum().clamp_min(1) * L
        else:
            norm = m.numel()
        kl1, kl2 = kl1.sum(), kl2.sum()
        loss = self.loss_weight * (kl1 / norm + kl2 / norm) / 2
        if return_parts:
            return loss, dict(kl_sum_1=kl1, kl_sum_2=kl2, normalizer=norm)
        return loss
