"""Official SegCLIP checkpoint keys -> ``mmseg_ovs`` :class:`SegCLIP` keys.

The official model stores everything under ``clip.`` (``clip.visual.transformer.layers0``
= CLIP blocks before the group module, ``layers2`` = blocks after it, ``semantic_layer2`` =
the group module, ``layers_mae2`` / ``reconstruct_layer2`` = reconstruction branch) and the
MAE decoder under ``vis_mae_decoder.``. Tensor layouts are kept (packed q;k;v MHA weights,
grouped-conv K/V weights), so conversion is a pure renaming.
"""
import re
from collections import OrderedDict
from typing import Dict, Optional

import torch

__all__ = ['convert_segclip_state_dict', 'segclip_key_map']

# Keys of the official model that are bookkeeping, not parameters.
_DROP = ('clip.input_resolution', 'clip.context_length', 'clip.vocab_size')


def segclip_key_map(key: str, first_stage_layers: int) -> Optional[str]:
    """Map one official key to its mmseg_ovs name (None: not part of the model)."""
    if key.startswith('module.'):
        key = key[len('module.'):]
    if key in _DROP:
        return None
    m = re.match(r'clip\.visual\.transformer\.(layers0|layers2)\.(\d+)\.(.*)', key)
    if m:
        idx = int(m.group(2)) + (first_stage_layers if m.group(1) == 'layers2' else 0)
        return f'backbone.visual.transformer.resblocks.{idx}.{m.group(3)}'
    rules = (
        ('clip.visual.transformer.semantic_layer2.', 'neck.'),
        ('clip.visual.transformer.layers_mae2.', 'reconstruction.blocks.'),
        ('clip.visual.transformer.reconstruct_layer2.rec_proj_a.a_fc.', 'reconstruction.a_fc.'),
        ('clip.visual.', 'backbone.visual.'),
        ('vis_mae_decoder.', 'reconstruction.decoder.'),
        ('clip.', 'text_encoder.'),
    )
    for src, dst in rules:
        if key.startswith(src):
            return dst + key[len(src):]
    return None


def convert_segclip_state_dict(state_dict: Dict[str, torch.Tensor],
                               first_stage_layers: Optional[int] = None,
                               strict: bool = True) -> 'OrderedDict[str, torch.Tensor]':
    """Rename an official SegCLIP state dict (``segclip.bin`` / fixture ``state_dict``).

    Args:
        state_dict: official keys -> tensors (a ``module.`` prefix is stripped).
        first_stage_layers: blocks before the group module; default: counted from the
            ``layers0.*`` keys.
        strict: raise on keys that do not belong to the SegCLIP model.
    """
    if first_stage_layers is None:
        idx = {int(m.group(1)) for k in state_dict
               for m in [re.search(r'transformer\.layers0\.(\d+)\.', k)] if m}
        if not idx and any('transformer.layers2.' in k for k in state_dict):
            raise KeyError('layers2.* keys without layers0.* keys: pass first_stage_layers')
        first_stage_layers = max(idx) + 1 if idx else 0
    out = OrderedDict()
    unknown = []
    for key, value in state_dict.items():
        new = segclip_key_map(key, first_stage_layers)
        if new is None:
            if key.replace('module.', '', 1) not in _DROP:
                unknown.append(key)
            continue
        out[new] = value
    if unknown and strict:
        raise KeyError(f'unexpected keys in the SegCLIP checkpoint: {unknown[:10]}')
    return out


#: Model settings under which the official release was trained: the torch-1.8 cross-attention that
#: mixes the samples of a batch. Recorded in a converted checkpoint's ``meta['model_settings']`` and
#: applied on load by ``CheckpointModelSettingsHook`` (every SegCLIP config has it).
SEGCLIP_RELEASE_MODEL_SETTINGS = {'neck.batch_mixing_legacy': True}


def segclip_checkpoint_meta(source_name: str, batch_mixing_legacy: bool = True) -> dict:
    """``meta`` of a checkpoint converted from the official release."""
    meta = dict(converted_from=source_name, method='SegCLIP')
    if batch_mixing_legacy:
        meta['model_settings'] = dict(SEGCLIP_RELEASE_MODEL_SETTINGS)
    return meta
