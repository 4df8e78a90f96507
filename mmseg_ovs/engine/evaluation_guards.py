"""Refuse evaluations that cannot be right (used by ``tools/test.py`` and ``tools/benchmark_all.py``).

* The model must predict as many classes as the test dataset has: a wrong vocabulary otherwise
  still yields a plausible-looking (but meaningless) mIoU table.
* The checkpoint must initialise every parameter of the model: MMEngine loads non-strictly and only
  warns about missing keys, so e.g. a PixelCLIP checkpoint given to the SegCLIP config evaluates with
  a randomly initialised group module. Missing *buffers* are accepted only when they are rebuilt at
  run time (:data:`REBUILT_BUFFER_PATTERNS`); anything else missing is an error naming the keys.
"""
import re
from typing import List, Optional

import torch.nn as nn
from mmengine.model import BaseTTAModel, is_model_wrapper

__all__ = ['REBUILT_BUFFER_PATTERNS', 'EvaluationGuardError', 'check_class_count', 'load_checkpoint_for_evaluation',
           'model_num_classes', 'missing_checkpoint_keys']

# Buffers a checkpoint may lack because the model recomputes them (documented in the README):
# the text encoder's cached class embeddings (recomputed from the vocabulary of the config) and the
# causal attention mask of the CLIP text tower (a constant of the context length).
REBUILT_BUFFER_PATTERNS = (
    r'(^|\.)text_encoder\.(.*\.)?(class_embeddings|cached_class_embeddings|_class_embeddings|'
    r'class_embedding_cache)$',
    r'(^|\.)attn_mask$',
)


class EvaluationGuardError(RuntimeError):
    """An evaluation that cannot give a meaningful result."""


def _unwrap(model: nn.Module) -> nn.Module:
    while is_model_wrapper(model) or isinstance(model, BaseTTAModel):
        model = model.module
    return model


def model_num_classes(model: nn.Module) -> Optional[int]:
    """Output classes of a segmentor: ``num_classes`` of an open-vocabulary segmentor (its
    vocabulary) or of an mmseg decode head; None when it cannot be told."""
    model = _unwrap(model)
    try:
        n = getattr(model, 'num_classes', None)
    except (RuntimeError, TypeError):  # an open-vocabulary model without a vocabulary
        return None
    if n is not None:
        return int(n)
    head = getattr(model, 'decode_head', None)
    if isinstance(head, nn.ModuleList):
        head = head[-1]
    if head is not None and hasattr(head, 'num_classes'):
        return int(head.num_classes)
    return None


def check_class_count(model: nn.Module, dataset, what: str = 'test') -> None:
    """Raise :class:`EvaluationGuardError` when the model's class count differs from the dataset's."""
    classes = (getattr(dataset, 'metainfo', None) or {}).get('classes')
    n_model = model_num_classes(model)
    if classes is None or n_model is None:
        return
    if n_model != len(classes):
        names = getattr(_unwrap(model), 'class_names', None)
        shown = f' ({list(names)[:8]}{"..." if len(names) > 8 else ""})' if names else ''
        raise EvaluationGuardError(
            f'the model predicts {n_model} classes{shown} but the {what} dataset '
            f'{type(dataset).__name__} has {len(classes)} ({list(classes)[:8]}'
            f'{"..." if len(classes) > 8 else ""}): the metrics would be meaningless. Set the model\'s '
            'vocabulary (class_names / set_vocabulary) to the dataset\'s classes.')


def missing_checkpoint_keys(model: nn.Module, state_dict: dict) -> List[str]:
    """Keys of ``model.state_dict()`` that ``state_dict`` lacks or holds with another shape (both
    leave the model's tensor as initialised), less the rebuilt buffers."""
    model = _unwrap(model)
    have = {re.sub(r'^module\.', '', k): v for k, v in state_dict.items()}
    bad = []
    for key, value in model.state_dict().items():
        if any(re.search(p, key) for p in REBUILT_BUFFER_PATTERNS):
            continue
        if key not in have:
            bad.append(key)
        elif hasattr(have[key], 'shape') and tuple(have[key].shape) != tuple(value.shape):
            bad.append(f'{key} (shape {tuple(have[key].shape)} in the checkpoint, {tuple(value.shape)} in the model)')
    return bad


def load_checkpoint_for_evaluation(runner, path: str) -> dict:
    """Load ``path`` into ``runner.model`` through the runner (its hooks and key revision), then
    raise :class:`EvaluationGuardError` if it left any model parameter uninitialised.
    Any load failure is re-raised naming ``path``."""
    try:
        checkpoint = runner.load_checkpoint(path, map_location='cpu')
    except Exception as e:  # a missing/corrupt/foreign file: name it
        raise EvaluationGuardError(f'cannot load checkpoint {path!r}: {type(e).__name__}: {e}') from e
    state_dict = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else {}
    missing = missing_checkpoint_keys(runner.model, state_dict)
    if missing:
        shown = ', '.join(missing[:10]) + (f', ... ({len(missing)} in all)' if len(missing) > 10 else '')
        raise EvaluationGuardError(
            f'checkpoint {path!r} does not initialise {len(missing)} model parameter(s)/buffer(s): {shown}. '
            'Is it a checkpoint of this config\'s method?')
    return checkpoint
