"""OpenCLIPViT: an open_clip CLIP ViT image tower as an mmseg backbone."""
from typing import Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModule
from mmseg.registry import MODELS
from torch import nn
from torch.nn import functional as F

from mmseg_ovs.models.clip.builder import build_open_clip, load_clip_weights_into
from mmseg_ovs.models.clip.pos_embed import interpolate_pos_embed
from mmseg_ovs.models.utils.freeze import freeze_by_patterns

__all__ = ['OpenCLIPViT']


@MODELS.register_module()
class OpenCLIPViT(BaseModule):
    """The image tower of an open_clip ViT (``ViT-B-16`` first, any open_clip ViT by name).

    The wrapped tower is ``self.visual`` (an ``open_clip.transformer.VisionTransformer``), so its
    parameters keep open_clip's names under ``visual.``.

    Args:
        model_name: open_clip architecture name.
        model_cfg: open_clip model config dict instead of a name (tiny test models).
        pretrained: local CLIP weight file (OpenAI archive or OpenCLIP checkpoint), loaded by
            ``init_weights()`` (the runner calls it before training; tests/inference load a full
            checkpoint instead, so the CLIP file is not needed there).
        out_indices: blocks whose output tokens ``forward`` returns as (B, width, h, w) maps;
            ``-1`` is the last block.
        out_dense_proj: append the final dense tokens after ``ln_post`` and ``proj`` as (B, E, h, w).
        frozen_patterns: regexes over parameter names (e.g. ``'^visual\\.conv1'``) to freeze.
        freeze_unused: freeze the parameters that ``forward`` never uses (blocks after the last
            output index, and ``ln_post``/``proj`` without ``out_dense_proj``), so DDP needs no
            ``find_unused_parameters``. Set False when the tower is used through ``encode_image``
            or ``dense_features`` instead of ``forward``.
        pos_embed_antialias: antialias flag of the per-forward bicubic positional-embedding resize.
    """

    def __init__(self,
                 model_name: str = 'ViT-B-16',
                 model_cfg: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 out_indices: Union[int, Sequence[int]] = -1,
                 out_dense_proj: bool = False,
                 frozen_patterns: Sequence[str] = (),
                 pos_embed_antialias: bool = False,
                 freeze_unused: bool = True,
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.pretrained = pretrained
        self.visual = build_open_clip(model_name, model_cfg=model_cfg).visual
        if not hasattr(self.visual, 'transformer'):
            raise TypeError(f'{model_name} is not a ViT; use OpenCLIPConvNeXt for timm/ConvNeXt towers')
        self.patch_size = self.visual.patch_size
        self.width = self.visual.conv1.out_channels
        self.embed_dim = self.visual.output_dim
        self.num_layers = len(self.visual.transformer.resblocks)
        self.out_indices = [i % self.num_layers for i in
                            ([out_indices] if isinstance(out_indices, int) else out_indices)]
        self.out_dense_proj = out_dense_proj
        self.pos_embed_antialias = pos_embed_antialias
        unused = []
        if freeze_unused:
            unused = [] if out_dense_proj else [r'^visual\.ln_post\.', r'^visual\.proj$']
            last = max(self.out_indices) if not out_dense_proj else self.num_layers - 1
            unused += [rf'^visual\.transformer\.resblocks\.{i}\.' for i in range(last + 1, self.num_layers)]
        self.frozen_parameters = freeze_by_patterns(self, list(frozen_patterns) + unused)

    def init_weights(self):
        if self.pretrained:
            load_clip_weights_into(self, self.pretrained, prefixes=('visual.',))
        else:
            super().init_weights()

    @property
    def blocks(self) -> nn.ModuleList:
        return self.visual.transformer.resblocks

    def grid_size(self, img: torch.Tensor) -> Tuple[int, int]:
        return img.shape[-2] // self.patch_size[0], img.shape[-1] // self.patch_size[1]

    def embed(self, img: torch.Tensor) -> torch.Tensor:
        """Patch embedding + CLS + positional embedding (resized to the grid) + ``ln_pre``.

        Args:
            img: (B, 3, H, W) normalised images.
        Returns:
            (B, 1 + h*w, width) tokens, CLS first, patches row-major.
        """
        v = self.visual
        x = v.conv1(img)
        h, w = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)
        cls = v.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
        pos = interpolate_pos_embed(v.positional_embedding, (h, w), antialias=self.pos_embed_antialias)
        x = torch.cat([cls, x], dim=1) + pos.to(x.dtype)
        return v.ln_pre(x)

    def forward_blocks(self, x: torch.Tensor, start: int = 0, end: Optional[int] = None) -> torch.Tensor:
        """Run blocks ``start .. end-1`` on batch-first tokens (B, L, width)."""
        for block in self.blocks[start:end]:
            x = block(x)
        return x

    def forward_blocks_joint(self, xs: Sequence[torch.Tensor], start: int = 0,
                             end: Optional[int] = None) -> Tuple[torch.Tensor, ...]:
        """``forward_blocks`` on several token sets of different lengths at once.

        Args:
            xs: batch-first token sets (B_i, L_i, width), e.g. the full and the masked pass.
        Returns:
            one output per input, equal to ``forward_blocks(x)`` up to float rounding: the
            token-wise layers (LayerNorms, in/out projections, MLP) run once on all tokens
            (larger matmuls; one weight gradient per layer instead of one per set, no
            gradient accumulation), attention runs per set. Falls back to one
            ``forward_blocks`` per set for blocks other than open_clip's self-attention block
            and for compiled blocks (``compile_image_towers``).
        """
        blocks = list(self.blocks[start:end])
        plain = all(type(b.attn) is nn.MultiheadAttention and b.attn._qkv_same_embed_dim
                    and not hasattr(b, 'ln_1_kv') and b.attn.bias_k is None
                    and b.attn.in_proj_bias is not None
                    and (b.attn.dropout == 0 or not self.training)
                    and getattr(b, '_compiled_call_impl', None) is None for b in blocks)
        if not plain or len(xs) == 1:
            return tuple(self.forward_blocks(x, start, end) for x in xs)
        shapes = [x.shape[:2] for x in xs]
        sizes = [b * n for b, n in shapes]
        x = torch.cat([t.reshape(-1, t.shape[-1]) for t in xs])  # (sum B_i L_i, C)
        for blk in blocks:
            attn = blk.attn
            heads, C = attn.num_heads, x.shape[-1]
            qkv = F.linear(blk.ln_1(x), attn.in_proj_weight, attn.in_proj_bias)
            outs = []
            for part, (b, n) in zip(qkv.split(sizes), shapes):
                q, k, v = part.reshape(b, n, 3, heads, C // heads).permute(2, 0, 3, 1, 4)
                o = F.scaled_dot_product_attention(q, k, v)  # (b, heads, n, d)
                outs.append(o.transpose(1, 2).reshape(b * n, C))
            o = F.linear(torch.cat(outs), attn.out_proj.weight, attn.out_proj.bias)
            x = x + blk.ls_1(o)
            x = x + blk.ls_2(blk.mlp(blk.ln_2(x)))
        return tuple(t.reshape(b, n, -1) for t, (b, n) in zip(x.split(sizes), shapes))

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """``ln_post`` then ``@ proj`` on every token: (..., width) -> (..., E)."""
        x = self.visual.ln_post(tokens)
        return x @ self.visual.proj if self.visual.proj is not None else x

    def encode_image(self, img: torch.Tensor) -> torch.Tensor:
        """Pooled projection, equal to open_clip's ``encode_image`` (CLS pooling): (B, E)."""
        x = self.forward_blocks(self.embed(img))
        return self.project(x[:, 0])

    def dense_features(self, img: torch.Tensor) -> torch.Tensor:
        """Final tokens after ``ln_post`` + ``proj``, CLS dropped: (B, E, h, w)."""
        h, w = self.grid_size(img)
        x = self.project(self.forward_blocks(self.embed(img))[:, 1:])
        return x.transpose(1, 2).reshape(x.shape[0], -1, h, w)

    def forward(self, img: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """mmseg backbone interface: (B, width, h, w) maps after each of ``out_indices`` blocks,
        followed by the projected dense map (B, E, h, w) when ``out_dense_proj``."""
        h, w = self.grid_size(img)
        x = self.embed(img)
        outs = []
        last = max(self.out_indices) + 1 if not self.out_dense_proj else self.num_layers
        for i, block in enumerate(self.blocks[:last]):
            x = block(x)
            if i in self.out_indices:
                outs.append(x[:, 1:].transpose(1, 2).reshape(x.shape[0], -1, h, w))
        if self.out_dense_proj:
            y = self.project(x[:, 1:])
            outs.append(y.transpose(1, 2).reshape(y.shape[0], -1, h, w))
        return tuple(outs)
