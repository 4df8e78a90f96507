"""SegCLIP semantic group module (learnable centres + hard Gumbel patch assignment).

Reference: SegCLIP (Luo et al., ICML 2023), ``SemanticLearnerModule`` of ArrowLuo/SegCLIP.
Parameter names follow the official checkpoint (``clip.visual.transformer.semantic_layer2.*``)
so that conversion is a pure prefix rename.

Mixed precision: the cross-attention blocks, the V projection and ``proj_o`` follow autocast; the
assignment path -- ``cross_ln``, the K projection and ``k_ln``, the logits ``A = C K^T``, the (Gumbel)
softmax and its argmax -- runs in float32 (near ties decide the hard assignment), so ``hard_assign`` /
``soft_assign`` / ``assign_logits`` are float32.
"""
from collections import OrderedDict
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import Tensor

from mmseg_ovs.utils.precision import float32_region


class QuickGELU(nn.Module):
    """x * sigmoid(1.702 x) (CLIP's activation)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.sigmoid(1.702 * x)


def packed_mha(attn: nn.MultiheadAttention, q: Tensor, k: Tensor,
               v: Tensor) -> Tensor:
    """Multi-head attention with an ``nn.MultiheadAttention``'s packed weights via SDPA.

    Args:
        attn: holds ``in_proj_weight`` (3C, C) [q; k; v], ``in_proj_bias``, ``out_proj``.
        q: (B, Lq, C); k, v: (B, Lk, C). Batch-first.
    Returns:
        (B, Lq, C).
    """
    B, Lq, C = q.shape
    h = attn.num_heads
    wq, wk, wv = attn.in_proj_weight.chunk(3)
    bq, bk, bv = (attn.in_proj_bias.chunk(3) if attn.in_proj_bias is not None
                  else (None, None, None))
    q = F.linear(q, wq, bq).view(B, Lq, h, C // h).transpose(1, 2)
    if k is v:
        kv = F.linear(k, torch.cat([wk, wv]),
                      None if bk is None else torch.cat([bk, bv]))
        k, v = kv.view(B, -1, 2, h, C // h).permute(2, 0, 3, 1, 4)
    else:
        k = F.linear(k, wk, bk).view(B, -1, h, C // h).transpose(1, 2)
        v = F.linear(v, wv, bv).view(B, -1, h, C // h).transpose(1, 2)
    out = F.scaled_dot_product_attention(q, k, v)
    out = out.transpose(1, 2).reshape(B, Lq, C)
    return attn.out_proj(out)


class CrossAttentionBlock(nn.Module):
    """Pre-LN cross-attention block: q += MHA(ln_x(q), ln_k(kv)); q += MLP(ln_2(q)).

    Args:
        dim (int): token width C.
        num_heads (int): attention heads (independent of C).
        mlp_ratio (float): MLP hidden = mlp_ratio * C (QuickGELU).
        batch_mixing_legacy (bool): reproduce the official torch-1.8 behaviour where the
            batch-first key/value tensor (B, S, C) was read as sequence-first, so that for
            B > 1 sample b' at key position i reads flattened row i*B + b' of the batch.
            Off by default (correct per-image attention); identical to it at B = 1.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.,
                 batch_mixing_legacy: bool = False):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, num_heads)
        self.ln_x = nn.LayerNorm(dim)
        self.ln_k = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(OrderedDict([('c_fc', nn.Linear(dim, hidden)),
                                              ('gelu', QuickGELU()),
                                              ('c_proj', nn.Linear(hidden, dim))]))
        self.ln_2 = nn.LayerNorm(dim)
        self.batch_mixing_legacy = batch_mixing_legacy

    def forward(self, q: Tensor, kv: Tensor) -> Tensor:
        """q: (B, L, C) queries; kv: (B, S, C) keys/values (raw, normed here)."""
        kv = self.ln_k(kv)
        if self.batch_mixing_legacy:
            B, S, C = kv.shape
            kv = kv.reshape(S, B, C).transpose(0, 1)
        q = q + packed_mha(self.attn, self.ln_x(q), kv, kv)
        return q + self.mlp(self.ln_2(q))


class GroupedPointwise(nn.Module):
    """Grouped 1x1 Conv1d without bias as a block-diagonal linear map on (..., C) tokens.

    The parameter keeps the Conv1d layout ``weight`` (C_out, C_in / groups, 1) so that
    official ``k_conv`` / ``v_conv`` weights load unchanged; the forward is one batched
    matmul over the groups.
    """

    def __init__(self, channels: int, groups: int):
        super().__init__()
        assert channels % groups == 0, f'{channels} not divisible by {groups} groups'
        self.groups = groups
        conv = nn.Conv1d(channels, channels, 1, groups=groups, bias=False)
        self.weight = nn.Parameter(conv.weight.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        g = self.groups
        *lead, C = x.shape
        w = self.weight.view(g, C // g, C // g)  # (g, out, in)
        y = torch.einsum('ngi,goi->ngo', x.reshape(-1, g, C // g), w)
        return y.reshape(*lead, C)


class GroupOutputHead(nn.Module):
    """``proj_o``: LN -> fc1 -> GELU(erf) -> fc2 -> QuickGELU (no residual)."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.ln = nn.LayerNorm(dim)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(dim, hidden)
        self.mlp.act = nn.GELU()
        self.mlp.fc2 = nn.Linear(hidden, dim)
        self.act = QuickGELU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.mlp.fc2(self.mlp.act(self.mlp.fc1(self.ln(x)))))


def hard_gumbel_assign(logits: Tensor, tau: float = 0.9, dim: int = 1,
                       training: bool = True,
                       noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Straight-through hard Gumbel-softmax as in SegCLIP.

    Training: y = softmax((logits + g) / tau) with g ~ Gumbel(0, 1) (or ``noise``);
    eval: y = softmax(logits) (no noise, no temperature). Returns
    ``(onehot(argmax y) - y.detach() + y, y)``.
    """
    if training:
        if noise is None:
            noise = -torch.empty_like(logits).exponential_().log()
        y = ((logits + noise) / tau).softmax(dim)
    else:
        y = logits.softmax(dim)
    index = y.argmax(dim, keepdim=True)
    y_hard = torch.zeros_like(y).scatter_(dim, index, 1.0)
    return y_hard - y.detach() + y, y


@MODELS.register_module()
class SemanticGroupNeck(BaseModule):
    """SegCLIP semantic group module: aggregates patch tokens into learnable centres.

    Each of ``num_centres`` learnable centres cross-attends (``num_cross_layers`` blocks)
    to ``[centres; patch tokens]``; patches are hard-assigned to centres with a
    straight-through Gumbel-softmax over the unscaled logits A = C K^T (tau during
    training, plain softmax at eval); a centre's region feature is
    ``proj_o(C + mean of V over its patches)``.

    Args:
        in_channels (int): token width C.
        num_heads (int): attention heads of the cross-attention (any divisor of C).
        num_centres (int): learnable centres L. Default 8.
        num_cross_layers (int): cross-attention blocks. Default 2.
        kv_groups (int, optional): groups of the grouped 1x1 K/V projections
            (official: = num_heads). Default None -> num_heads.
        mlp_ratio (float): hidden ratio of all MLPs. Default 4.
        tau (float): Gumbel-softmax temperature in training. Default 0.9.
        in_index (int): which map to use when given a tuple of (B, C, H, W) maps.
        output_map (bool): if True return a tuple with one (B, C, H, W) map where each
            patch carries its centre's region feature (hard assignment), so that the neck
            can feed a stock mmseg decode head; otherwise return a dict (see forward).
        batch_mixing_legacy (bool): emulate the official torch-1.8 batch-mixing
            cross-attention (spec section 0.1). Default False (correct per-image).
    """

    def __init__(self,
                 in_channels: int,
                 num_heads: int,
                 num_centres: int = 8,
                 num_cross_layers: int = 2,
                 kv_groups: Optional[int] = None,
                 mlp_ratio: float = 4.,
                 tau: float = 0.9,
                 in_index: int = -1,
                 output_map: bool = False,
                 batch_mixing_legacy: bool = False,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        C = in_channels
        assert C % num_heads == 0, f'in_channels {C} not divisible by {num_heads} heads'
        self.in_channels = C
        self.num_centres = num_centres
        self.tau = tau
        self.in_index = in_index
        self.output_map = output_map
        self.norm = nn.LayerNorm(C)
        self.semantic_center = nn.Parameter(torch.empty(num_centres, C))
        nn.init.trunc_normal_(self.semantic_center, std=.02)
        self.cross_att = nn.Sequential(OrderedDict(
            (str(i), CrossAttentionBlock(C, num_heads, mlp_ratio, batch_mixing_legacy))
            for i in range(num_cross_layers)))
        self.cross_ln = nn.LayerNorm(C)
        kv_groups = kv_groups or num_heads
        self.k_conv = GroupedPointwise(C, kv_groups)
        self.k_ln = nn.LayerNorm(C)
        self.v_conv = GroupedPointwise(C, kv_groups)
        self.proj_o = GroupOutputHead(C, int(C * mlp_ratio))

    @property
    def batch_mixing_legacy(self) -> bool:
        return self.cross_att[0].batch_mixing_legacy if len(self.cross_att) else False

    @batch_mixing_legacy.setter
    def batch_mixing_legacy(self, value: bool):
        for blk in self.cross_att:
            blk.batch_mixing_legacy = bool(value)

    def _to_tokens(self, x) -> Tuple[Tensor, Optional[Tuple[int, int]]]:
        if isinstance(x, (list, tuple)):
            x = x[self.in_index]
        if x.dim() == 4:
            B, C, H, W = x.shape
            return x.flatten(2).transpose(1, 2), (H, W)
        assert x.dim() == 3, f'expected (B, N, C) tokens or (B, C, H, W) maps, got {x.shape}'
        return x, None

    def forward(self, x: Union[Tensor, Sequence[Tensor]],
                gumbel_noise: Optional[Tensor] = None,
                return_intermediates: bool = False) -> Union[Dict[str, Tensor], Tuple[Tensor]]:
        """Group patch tokens.

        Args:
            x: tokens (B, N, C), a map (B, C, H, W) or a tuple of maps (``in_index``).
            gumbel_noise: (B, L, N) Gumbel noise to use in training instead of sampling.
        Returns:
            dict with ``group_tokens`` (B, L, C) region features, ``hard_assign`` /
            ``soft_assign`` / ``assign_logits`` (B, L, N), ``centres`` (B, L, C);
            or, with ``output_map``, a 1-tuple with the (B, C, H, W) region map.
        """
        h, hw = self._to_tokens(x)
        B, N, C = h.shape
        h_norm = self.norm(h)
        q = self.semantic_center.unsqueeze(0).expand(B, -1, -1)
        inter = {}
        for i, blk in enumerate(self.cross_att):
            q = blk(q, torch.cat([q, h], dim=1))
            if return_intermediates:
                inter[f'centres_after_cross_attn_block{i}'] = q
        v = self.v_conv(h_norm)
        with float32_region(h.device.type):  # the assignment decides near ties: fp32
            q = self.cross_ln(q.float())
            k = self.k_ln(self.k_conv(h_norm.float()))
            logits = q @ k.transpose(1, 2)  # (B, L, N), no 1/sqrt(d)
            noise = None if gumbel_noise is None else gumbel_noise.float()
            hard, _ = hard_gumbel_assign(logits, self.tau, 1, self.training, noise)
            soft = logits.softmax(1)
        pooled = (hard @ v) / hard.sum(-1, keepdim=True).clamp_min(1.0)
        out = self.proj_o(q + pooled)
        if self.output_map:
            assert hw is not None or int(N**0.5)**2 == N, 'output_map needs a square grid'
            H, W = hw if hw is not None else (int(N**0.5), ) * 2
            fmap = (hard.transpose(1, 2) @ out).transpose(1, 2).reshape(B, C, H, W)
            return (fmap, )
        res = dict(group_tokens=out, hard_assign=hard, soft_assign=soft,
                   assign_logits=logits, centres=q)
        if return_intermediates:
            inter.update(norm_x=h_norm, k_feat=k, v_feat=v, proj_o_input=q + pooled)
            res['intermediates'] = inter
        return res
