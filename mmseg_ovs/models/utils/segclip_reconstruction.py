"""SegCLIP's masked-reconstruction branch (paper eq. 4 + an MAE decoder).

A second, 75%-masked pass of the image encoder groups the visible patches; each visible
patch is rebuilt from the region features through ``a_fc`` (mixing the centre axis of the
hard assignment), refined by two extra CLIP-style blocks (``layers_mae2``) and decoded by a
3-block MAE decoder with fixed 2-D sin-cos positions into pixels; MSE on masked patches.
Parameter names follow the official checkpoint (``vis_mae_decoder.*``).
"""
from functools import partial
from typing import Optional, Tuple

import numpy as np
import torch
import torch.nn as nn
from open_clip.transformer import QuickGELU as OpenCLIPQuickGELU
from open_clip.transformer import ResidualAttentionBlock
from timm.models.vision_transformer import Block
from torch import Tensor


def sincos_pos_embed_2d(dim: int, grid_size: int, cls_token: bool = True) -> Tensor:
    """MAE's fixed 2-D sin-cos table (1 + g*g, dim): a zero CLS row, then patches
    row-major; channels [0:dim/2] encode the column, [dim/2:] the row, each half
    [sin(pos w_k), cos(pos w_k)] with w_k = 10000^(-k / (dim/4))."""
    assert dim % 4 == 0, dim
    omega = 1. / 10000**(np.arange(dim // 4, dtype=np.float64) / (dim / 4.))
    rows, cols = np.meshgrid(np.arange(grid_size, dtype=np.float32),
                             np.arange(grid_size, dtype=np.float32), indexing='ij')

    def enc(pos):
        out = np.einsum('m,d->md', pos.reshape(-1).astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    emb = np.concatenate([enc(cols), enc(rows)], axis=1)
    if cls_token:
        emb = np.concatenate([np.zeros([1, dim]), emb], axis=0)
    return torch.from_numpy(emb).float()


def random_masking(tokens: Tensor, mask_ratio: float = 0.75,
                   noise: Optional[Tensor] = None) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """MAE random masking that always keeps the CLS token (index 0).

    Args:
        tokens: (B, 1 + N, C).
        noise: (B, 1 + N) uniform noise (sampled if None); its CLS entry is set to -1.
    Returns:
        visible (B, K, C) in ascending-noise order (CLS first), mask (B, 1 + N) with
        1 = masked, ids_restore (B, 1 + N), ids_keep (B, K); K = int((1 + N)(1 - ratio)).
    """
    B, L, C = tokens.shape
    len_keep = int(L * (1 - mask_ratio))
    noise = torch.rand(B, L, device=tokens.device) if noise is None else noise.clone()
    noise[:, 0] = -1.
    ids_shuffle = torch.argsort(noise, dim=1)
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :len_keep]
    visible = torch.gather(tokens, 1, ids_keep.unsqueeze(-1).expand(-1, -1, C))
    mask = torch.ones(B, L, device=tokens.device)
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)
    return visible, mask, ids_restore, ids_keep


def patchify(img: Tensor, patch_size: int) -> Tensor:
    """(B, 3, H, W) -> (B, h*w, p*p*3), pixel-major with channels last (MAE layout)."""
    B, C, H, W = img.shape
    p = patch_size
    x = img.reshape(B, C, H // p, p, W // p, p)
    return torch.einsum('nchpwq->nhwpqc', x).reshape(B, (H // p) * (W // p), p * p * C)


class MAEDecoder(nn.Module):
    """MAE decoder: embed -> mask tokens + unshuffle -> + fixed sin-cos pos -> timm blocks
    -> norm -> per-patch pixel prediction (CLS dropped)."""

    def __init__(self, in_dim: int, num_patches: int, patch_size: int = 16,
                 embed_dim: int = 384, depth: int = 3, num_heads: int = 8,
                 mlp_ratio: float = 4., in_chans: int = 3):
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.decoder_embed = nn.Linear(in_dim, embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        grid = int(num_patches**0.5)
        assert grid * grid == num_patches, num_patches
        self.register_buffer('decoder_pos_embed',
                             sincos_pos_embed_2d(embed_dim, grid).unsqueeze(0))
        self.decoder_blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True, norm_layer=norm)
            for _ in range(depth))
        self.decoder_norm = norm(embed_dim)
        self.decoder_pred = nn.Linear(embed_dim, patch_size**2 * in_chans)
        nn.init.normal_(self.mask_token, std=.02)

    def forward(self, x: Tensor, ids_restore: Tensor,
                intermediates: Optional[dict] = None) -> Tensor:
        """x: (B, K, in_dim) visible tokens (pseudo-CLS first); -> (B, N, p*p*3)."""
        x = self.decoder_embed(x)
        if intermediates is not None:
            intermediates['decoder_embedded'] = x
        B, K, D = x.shape
        L = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.expand(B, L - K, D)], dim=1)
        x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, D))
        x = x + self.decoder_pos_embed
        if intermediates is not None:
            intermediates['decoder_tokens_unshuffled_with_pos'] = x
        for blk in self.decoder_blocks:
            x = blk(x)
        x = self.decoder_norm(x)
        if intermediates is not None:
            intermediates['decoder_after_norm'] = x
        return self.decoder_pred(x)[:, 1:]


class SegCLIPReconstruction(nn.Module):
    """Reconstruction branch on top of the group module's masked-pass outputs.

    Args:
        width (int): token width C of the image encoder.
        num_heads (int): heads of the two ``layers_mae2`` CLIP-style blocks.
        num_centres (int): group centres L (``a_fc`` is L -> L).
        num_patches (int): patches of the full image (196 at 224 px).
        patch_size (int): ViT patch size.
        num_blocks (int): ``layers_mae2`` depth. Default 2.
        decoder_dim / decoder_depth / decoder_heads: MAE decoder (384 / 3 / 8).
    """

    def __init__(self, width: int, num_heads: int, num_centres: int = 8,
                 num_patches: int = 196, patch_size: int = 16, num_blocks: int = 2,
                 decoder_dim: int = 384, decoder_depth: int = 3, decoder_heads: int = 8):
        super().__init__()
        self.patch_size = patch_size
        self.a_fc = nn.Linear(num_centres, num_centres)
        self.act = OpenCLIPQuickGELU()
        self.blocks = nn.ModuleList(
            ResidualAttentionBlock(width, num_heads, act_layer=OpenCLIPQuickGELU)
            for _ in range(num_blocks))
        self.decoder = MAEDecoder(width, num_patches, patch_size, decoder_dim,
                                  decoder_depth, decoder_heads)

    def forward(self, region_tokens: Tensor, hard_assign: Tensor, ids_restore: Tensor,
                mask: Tensor, img: Tensor, intermediates: Optional[dict] = None) -> Tensor:
        """
        Args:
            region_tokens: (B, L, C) group outputs of the masked pass (not stage 3).
            hard_assign: (B, L, K-1) hard assignment of the visible patches.
            ids_restore, mask: (B, 1 + N) from :func:`random_masking`.
            img: (B, 3, H, W) normalised input images (the target).
        Returns:
            scalar MSE over masked patches.
        """
        m = self.a_fc(hard_assign.transpose(1, 2))  # (B, K-1, L)
        x = self.act(m @ region_tokens)  # (B, K-1, C)
        if intermediates is not None:
            intermediates['reconstructed_tokens'] = x
        for blk in self.blocks:
            x = blk(x)
        if intermediates is not None:
            intermediates['tokens_after_mae_blocks'] = x
        x = torch.cat([x.mean(1, keepdim=True), x], dim=1)
        if intermediates is not None:
            intermediates['decoder_input'] = x
        pred = self.decoder(x, ids_restore, intermediates)
        if intermediates is not None:
            intermediates['pred_patches'] = pred
        target = patchify(img, self.patch_size)
        loss = ((pred - target)**2).mean(-1)
        m = mask[:, 1:]
        return (loss * m).sum() / m.sum()
