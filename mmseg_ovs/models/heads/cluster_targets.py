"""Mask pooling + Sinkhorn assignment + per-cluster target union (PixelCLIP ``prepare_clusters``).

Batched over all masks of the batch (no per-mask Python loop). Masks are kept separate, so
overlapping masks pool their shared pixels independently and may make a pixel positive for
several clusters, exactly as the official code.

Precision: everything here runs in float32 with autocast disabled (mask pooling, cosine logits,
Sinkhorn, argmax), whatever the dtype of the teacher features.
"""
from typing import List, Sequence

import torch
import torch.nn.functional as F

from mmseg_ovs.utils.precision import float32_region
from .sinkhorn import distributed_sinkhorn


def downsize_masks(masks: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Legacy ``mode='nearest'`` resize of a bool stack (n, H, W) -> bool (n, *size).

    Done on uint8 (identical sampling to the official float resize, 4x less memory).
    """
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size), dtype=torch.bool)
    out = F.interpolate(masks.to(torch.uint8).unsqueeze(0), size=tuple(size), mode='nearest')
    return out.squeeze(0).bool()


def build_cluster_targets(teacher_feat: torch.Tensor,
                          masks: List[torch.Tensor],
                          cluster_embeddings: torch.Tensor,
                          eps: float,
                          mask_res: Sequence[int] = (256, 256),
                          n_iters: int = 3,
                          return_details: bool = False):
    """Assign every kept mask to a cluster and build the binary cluster targets.

    Args:
        teacher_feat (Tensor): (B, C, h, w) teacher dense features (unnormalised).
        masks (list[Tensor]): B bool stacks (n_i, H, W); n_i may be 0.
        cluster_embeddings (Tensor): (k, C) prompt text embeddings (gradient is not used).
        eps (float): inverse temperature of the Sinkhorn logits (100 ViT, 1 ConvNeXt).
        mask_res (tuple): target resolution (256, 256).

    Returns:
        Tensor: (B, k, *mask_res) float targets in {0, 1}; with ``return_details`` also a dict
        (downsized masks, keep flags, mask_feats, logits, Q, hard_assignment, num_masks, feats256).
    """
    B = teacher_feat.shape[0]
    k = cluster_embeddings.shape[0]
    H, W = mask_res
    device = teacher_feat.device
    with torch.no_grad(), float32_region(device.type):
        feats = F.interpolate(teacher_feat.float(), size=tuple(mask_res), mode='bilinear',
                              align_corners=False)  # (B, C, H, W)
        feats_flat = feats.flatten(2).transpose(1, 2)  # (B, HW, C)
        emb = F.normalize(cluster_embeddings.detach().float(), dim=-1)
        targets = torch.zeros(B * k, H * W, device=device)
        counts = [int(m.shape[0]) for m in masks]
        nonempty = [m.to(device) for m in masks if m.shape[0] > 0]
        if nonempty and len({tuple(m.shape[1:]) for m in nonempty}) == 1:
            down = downsize_masks(torch.cat(nonempty, 0), mask_res)  # (N, H, W) bool
        elif nonempty:  # images of different sizes: resize per image
            down = torch.cat([downsize_masks(m, mask_res) for m in nonempty], 0)
        else:
            down = torch.zeros(0, H, W, dtype=torch.bool, device=device)
        img_idx = torch.repeat_interleave(torch.arange(B, device=device),
                                          torch.tensor(counts, device=device))
        area = down.flatten(1).sum(1)
        keep = area > 1
        kept = down[keep].flatten(1).float()  # (N, HW)
        kimg = img_idx[keep]
        n = kept.shape[0]
        mask_feats = feats.new_zeros(n, feats.shape[1])
        if n > 0:
            weights = kept / area[keep].unsqueeze(1).float()
            # one matmul per image (B small), never per mask
            for b in range(B):
                sel = kimg == b
                if bool(sel.any()):
                    mask_feats[sel] = weights[sel] @ feats_flat[b]
        similarity = F.normalize(mask_feats, dim=-1) @ emb.t()
        logits = eps * similarity
        # every rank must enter the all-reduces even with zero local masks
        q = distributed_sinkhorn(logits, n_iters)
        hard = q.argmax(dim=1)
        if n > 0:
            targets.index_add_(0, kimg * k + hard, kept)
        targets = targets.clamp_(0, 1).view(B, k, H, W)
    if not return_details:
        return targets
    split_keep = list(keep.split(counts))
    details = dict(downsized_masks=list(down.split(counts)), keep=split_keep,
                   num_masks=torch.stack([s.sum() for s in split_keep]) if B else keep.new_zeros(0),
                   mask_feats=mask_feats, similarity=similarity, logits=logits, Q=q,
                   hard_assignment=hard, feats256=feats)
    return targets, details
