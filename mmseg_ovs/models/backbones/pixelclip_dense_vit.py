"""PixelCLIPDenseViT: open_clip ViT with PixelCLIP's modified dense last block."""
import torch
import torch.nn.functional as F
from mmseg.registry import MODELS

from .open_clip_vit import OpenCLIPViT


def value_only_block(block: torch.nn.Module, x: torch.Tensor, return_value: bool = False):
    """PixelCLIP's ``forward_dense`` last block on batch-first tokens (B, L, W).

    No attention mixing: v'' = out_proj(V(ln_1(x))) + x[:, :1] (the CLS *input* token broadcast to
    every position), out = v'' + MLP(ln_2(v'')). q/k are never computed (the official code projects and
    discards them).
    """
    attn = block.attn
    width = x.shape[-1]
    y = block.ln_1(x)
    v = F.linear(y, attn.in_proj_weight[2 * width:], attn.in_proj_bias[2 * width:])
    v = attn.out_proj(v) + x[:, :1]
    out = v + block.mlp(block.ln_2(v))
    return (out, v) if return_value else out


@MODELS.register_module()
class PixelCLIPDenseViT(OpenCLIPViT):
    """CLIP ViT image tower producing PixelCLIP's dense features (B, E, h, w) (NCHW, as every backbone).

    Blocks 0..L-2 are standard; the last block is :func:`value_only_block`; ``ln_post`` and ``proj``
    run on all tokens, CLS is dropped. The positional embedding is resized bicubically (no antialias)
    from the stored parameter on every forward, so non-square inputs work too (the official code
    assumes square inputs). Parameter names are open_clip's (``visual.*``), identical to OpenAI CLIP's.
    """

    #: trainable parameters in PixelCLIP's ``CLIP_FINETUNE='attention'`` mode (names contain attn/position)
    attention_trainable = ('attn', 'position')

    def dense_features(self, img: torch.Tensor, return_intermediates: bool = False):
        h, w = self.grid_size(img)
        x = self.embed(img)
        inter = dict(tokens_after_ln_pre=x, block_outputs=[])
        for block in self.blocks[:-1]:
            x = block(x)
            inter['block_outputs'].append(x)
        x, v = value_only_block(self.blocks[-1], x, return_value=True)
        inter['block_outputs'].append(x)
        inter['last_block_value_plus_cls'] = v
        y = self.project(x)
        out = y[:, 1:].transpose(1, 2).reshape(y.shape[0], -1, h, w)
        if not return_intermediates:
            return out
        inter['post_ln_post_tokens'] = self.visual.ln_post(x)
        return out, inter

    def forward(self, img: torch.Tensor):
        """mmseg backbone interface: ``((B, E, h, w),)`` dense map."""
        return (self.dense_features(img),)
