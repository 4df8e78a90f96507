"""Model settings recorded in a checkpoint's meta, applied when the checkpoint is loaded.

A converted official checkpoint may need a model setting that differs from the config default, e.g.
the released SegCLIP weights were trained with the official torch-1.8 batch-mixing cross-attention
(``neck.batch_mixing_legacy=True``). ``tools/convert_segclip_checkpoint.py`` records
``meta['model_settings'] = {'neck.batch_mixing_legacy': True}``; this hook (in every SegCLIP config)
applies it in ``after_load_checkpoint``, i.e. whenever the runner loads a checkpoint (``load_from``,
``tools/test.py``, ``tools/benchmark_all.py``, resume), so a user evaluating the converted release
does not have to know. Checkpoints without the meta key are untouched.
"""
from typing import Dict, List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn

__all__ = ['MODEL_SETTINGS_KEY', 'apply_model_settings', 'CheckpointModelSettingsHook']

#: Key of ``checkpoint['meta']`` holding ``{'dotted.attribute': value}``.
MODEL_SETTINGS_KEY = 'model_settings'


def apply_model_settings(model: nn.Module, settings: Optional[Dict], ignore: Sequence[str] = ()) -> List[str]:
    """Set ``model.<dotted.path> = value`` for each entry of ``settings``; returns what was set.

    A path that does not exist on the model is an error naming it (the checkpoint does not fit).
    """
    if is_model_wrapper(model):
        model = model.module
    done = []
    for path, value in (settings or {}).items():
        if path in ignore:
            continue
        *parents, attr = path.split('.')
        obj = model
        for name in parents:
            if not hasattr(obj, name):
                raise AttributeError(f'checkpoint meta "{MODEL_SETTINGS_KEY}": {type(model).__name__} has no '
                                     f'"{path}" (no attribute "{name}")')
            obj = getattr(obj, name)
        if not hasattr(obj, attr):
            raise AttributeError(f'checkpoint meta "{MODEL_SETTINGS_KEY}": {type(model).__name__} has no "{path}"')
        setattr(obj, attr, value)
        done.append(f'{path}={value!r}')
    return done


@HOOKS.register_module()
class CheckpointModelSettingsHook(Hook):
    """Apply ``checkpoint['meta']['model_settings']`` to the model when the runner loads a checkpoint.

    Args:
        ignore (Sequence[str]): setting paths to leave as the config has them (e.g.
            ``('neck.batch_mixing_legacy',)`` to evaluate the release with per-image attention).
    """
    priority = 'NORMAL'

    def __init__(self, ignore: Sequence[str] = ()):
        self.ignore = tuple(ignore)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        settings = (checkpoint.get('meta') or {}).get(MODEL_SETTINGS_KEY)
        done = apply_model_settings(runner.model, settings, self.ignore)
        if done:
            print_log(f'applied model settings recorded in the checkpoint: {", ".join(done)}', logger='current')
