"""Key mapping from official PixelCLIP (detectron2) checkpoints to :class:`PixelCLIPSegmentor`."""
from typing import Dict, Tuple

import torch

__all__ = ['convert_pixelclip_state_dict', 'PIXELCLIP_KEY_MAP']

#: official prefix -> mmseg_ovs prefix, first match wins (order matters)
PIXELCLIP_KEY_MAP: Tuple[Tuple[str, str], ...] = (
    ('sem_seg_head.predictor.clip_model.visual.', 'backbone.visual.'),
    ('sem_seg_head.predictor.clip_model.', 'text_encoder.'),
    ('sem_seg_head.predictor.prompt_tokens', 'decode_head.prompt_tokens'),
    ('teacher_encoder.visual.', 'teacher.visual.'),
    ('head.', 'decode_head.decoder.'),
)

# official entries with no counterpart (text tower of the teacher is None; DINO is not stored by us)
_DROP_PREFIXES = ('teacher_encoder.', 'dino.', 'sem_seg_head.predictor.text_features')


def convert_pixelclip_state_dict(state_dict: Dict[str, torch.Tensor], strict: bool = True,
                                 densify: bool = True) -> Dict[str, torch.Tensor]:
    """Rename official PixelCLIP keys to PixelCLIPSegmentor keys.

    Args:
        state_dict: official ``model`` state dict (or one of the parity fixtures' ``state_dict``).
        strict: raise on keys that match no rule (other than known unused ones).
        densify: convert sparse tensors (the fixtures' token table) to dense.
    Returns:
        dict with ``backbone.visual.*``, ``text_encoder.*``, ``decode_head.prompt_tokens``,
        ``decode_head.decoder.*`` and ``teacher.visual.*`` keys.
    """
    if 'model' in state_dict and isinstance(state_dict['model'], dict):
        state_dict = state_dict['model']
    out, unknown = {}, []
    for key, value in state_dict.items():
        if densify and torch.is_tensor(value) and value.is_sparse:
            value = value.to_dense()
        for src, dst in PIXELCLIP_KEY_MAP:
            if key.startswith(src):
                out[dst + key[len(src):]] = value
                break
        else:
            if not key.startswith(_DROP_PREFIXES):
                unknown.append(key)
    if unknown and strict:
        raise KeyError(f'unrecognised PixelCLIP checkpoint keys: {unknown[:10]} ({len(unknown)} total)')
    return out
