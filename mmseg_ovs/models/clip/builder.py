"""Build open_clip CLIP models from LOCAL weight files only.

Nothing here downloads: ``pretrained`` is always a path. Supported files:

* OpenAI CLIP archives (``ViT-B-16.pt``): TorchScript zip or plain state dict;
* OpenCLIP checkpoints: a state dict, or a training checkpoint with ``state_dict`` (``module.`` prefixes
  are stripped), ``.pt``/``.pth``/``.bin`` or ``.safetensors``.

Model definitions, tokenizer and state-dict conversion all come from open_clip.
"""
import copy
import os
import zipfile
from typing import Dict, Optional

import torch
from torch import nn

import open_clip
from open_clip.model import CLIP, resize_pos_embed

from mmseg_ovs.utils.checkpoint import safe_torch_load

__all__ = ['build_open_clip', 'load_clip_weights', 'load_clip_weights_into']


def _is_torchscript_archive(path: str) -> bool:
    """OpenAI's ``*.pt`` are TorchScript zips holding a ``constants.pkl``/``code/`` tree."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as zf:
        return any(name.endswith('constants.pkl') or '/code/' in name for name in zf.namelist())


def load_clip_weights(path: str) -> Dict[str, torch.Tensor]:
    """Read a CLIP state dict (open_clip key names) from a local file.

    Raises:
        FileNotFoundError: the file does not exist.
        RuntimeError: the file cannot be read as a CLIP checkpoint (message names the file).
    """
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f'CLIP weights not found: {path!r} (weights are never downloaded; '
                                f'point the config at a local file)')
    try:
        if path.endswith('.safetensors'):
            from safetensors.torch import load_file
            state_dict = load_file(path, device='cpu')
        elif _is_torchscript_archive(path):
            # TorchScript archives hold code, so they cannot go through the weights_only unpickler;
            # torch.jit.load does not execute pickled Python objects.
            state_dict = torch.jit.load(path, map_location='cpu').state_dict()
        else:
            state_dict = safe_torch_load(path)
    except Exception as err:  # noqa: BLE001 - re-raised with the file name
        raise RuntimeError(f'Cannot read CLIP weights from {path!r}: {err}') from err
    if isinstance(state_dict, dict) and 'state_dict' in state_dict:
        state_dict = state_dict['state_dict']
    if not isinstance(state_dict, dict) or not state_dict:
        raise RuntimeError(f'CLIP weights file {path!r} holds no state dict')
    if next(iter(state_dict)).startswith('module.'):
        state_dict = {k[len('module.'):]: v for k, v in state_dict.items()}
    # OpenAI archives carry bookkeeping entries that are not parameters.
    for key in ('input_resolution', 'context_length', 'vocab_size'):
        state_dict.pop(key, None)
    return {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}


def build_open_clip(model_name: Optional[str] = 'ViT-B-16',
                    model_cfg: Optional[dict] = None,
                    pretrained: Optional[str] = None,
                    quick_gelu: Optional[bool] = None,
                    image_size: Optional[int] = None) -> nn.Module:
    """Create an open_clip CLIP model (fp32, eval mode) and load local weights.

    Args:
        model_name: an open_clip architecture name (``ViT-B-16``, ``convnext_base_w_320``, ...).
            Ignored when ``model_cfg`` is given.
        model_cfg: an open_clip model config dict (``embed_dim``, ``vision_cfg``, ``text_cfg`` and
            optionally ``quick_gelu``), e.g. a tiny random model for tests.
        pretrained: path of a local weight file, or None for random weights.
        quick_gelu: force QuickGELU (OpenAI CLIP weights need it). Default: True when the file is an
            OpenAI archive or ``model_cfg['quick_gelu']``; otherwise open_clip's default.
        image_size: override the model's native input size (positional embeddings are resized with
            open_clip's ``resize_pos_embed`` when loading).
    """
    if model_cfg is not None:
        cfg = copy.deepcopy(dict(model_cfg))
    else:
        cfg = open_clip.get_model_config(model_name)
        if cfg is None:
            raise KeyError(f'Unknown open_clip model {model_name!r}; '
                           f'known: {", ".join(open_clip.list_models())}')
        cfg = copy.deepcopy(cfg)
    if quick_gelu is None:
        quick_gelu = cfg.get('quick_gelu', False) or bool(
            pretrained and _is_torchscript_archive(pretrained))
    cfg['quick_gelu'] = quick_gelu
    if image_size is not None:
        cfg['vision_cfg']['image_size'] = image_size
    # Never let timm / HF fetch default tower weights.
    cfg['vision_cfg'].pop('timm_model_pretrained', None)
    cfg['text_cfg'].pop('hf_model_pretrained', None)
    cfg.pop('custom_text', None)
    cfg.pop('multimodal_cfg', None)
    if 'hf_model_name' in cfg['text_cfg']:
        raise NotImplementedError('Hugging Face text towers are not supported (they download weights)')
    model = CLIP(**cfg)
    if pretrained:
        load_clip_weights_into(model, pretrained)
    return model.float().eval()


def _uses_quick_gelu(module: nn.Module) -> bool:
    """Whether the transformer MLPs of ``module`` use QuickGELU (True when it has no such MLP)."""
    from open_clip.transformer import QuickGELU
    acts = [m.mlp.gelu for m in module.modules() if hasattr(m, 'mlp') and hasattr(m.mlp, 'gelu')]
    return not acts or all(isinstance(a, QuickGELU) for a in acts)


def load_clip_weights_into(module: nn.Module, path: str, prefixes: Optional[tuple] = None) -> None:
    """Load a local CLIP file into ``module`` whose parameters use open_clip names.

    ``module`` may be a whole open_clip ``CLIP`` or a wrapper holding only some towers (e.g. a backbone
    with ``.visual``): only the file's keys starting with ``prefixes`` (default: every top-level name
    the module has) are loaded, and every parameter of the module under those prefixes must be found.
    The ViT positional embedding is resized to the module's grid with open_clip's ``resize_pos_embed``.
    """
    state_dict = load_clip_weights(path)
    if _is_torchscript_archive(path) and not _uses_quick_gelu(module):
        raise ValueError(f'{path!r} is an OpenAI CLIP archive, trained with QuickGELU, but '
                         f'{type(module).__name__} was built with GELU: use an open_clip name ending in '
                         f'"-quickgelu" (e.g. "ViT-B-16-quickgelu") or model_cfg quick_gelu=True')
    own = module.state_dict()
    if prefixes is None:
        prefixes = tuple(sorted({k.split('.')[0] + ('.' if '.' in k else '') for k in own}))
    state_dict = {k: v for k, v in state_dict.items() if k.startswith(prefixes)}
    if hasattr(module, 'visual') and hasattr(module.visual, 'grid_size'):
        resize_pos_embed(state_dict, module)  # exactly as open_clip's own checkpoint loading
    missing = [k for k in own if k.startswith(prefixes) and k not in state_dict and k != 'logit_bias']
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise RuntimeError(f'CLIP weights {path!r} do not fit {type(module).__name__}: '
                           f'missing {missing[:8]}, unexpected {unexpected[:8]}')
    module.load_state_dict(state_dict, strict=False)

