"""Optimizer constructor whose parameter groups hold every parameter with the same settings."""
from typing import Dict, List, Tuple

from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


def merge_param_groups(groups: List[Dict]) -> List[Dict]:
    """Merge parameter groups whose settings (everything but ``params``) are equal.

    Order is kept: a merged group sits where its first member was and lists its parameters in their
    original order. Groups with any unhashable setting are left as they are.
    """
    merged: Dict[Tuple, Dict] = {}
    out: List[Dict] = []
    for group in groups:
        settings = {k: v for k, v in group.items() if k != 'params'}
        try:
            key = tuple(sorted(settings.items()))
            hash(key)
        except TypeError:
            out.append(group)
            continue
        if key in merged:
            merged[key]['params'].extend(group['params'])
        else:
            merged[key] = dict(settings, params=list(group['params']))
            out.append(merged[key])
    return out


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class MergedGroupsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` (same ``paramwise_cfg`` semantics: ``custom_keys``,
    ``norm_decay_mult``, ...) followed by :func:`merge_param_groups`.

    The default constructor puts each parameter into its own group as soon as a ``paramwise_cfg`` is
    given, so a fused or foreach optimizer still launches one kernel per parameter (hundreds per step
    for a ViT-B). Merged, every parameter keeps exactly its learning rate, weight decay and other
    settings, and ``AdamW(fused=True)`` updates each group in one kernel. Schedulers scale each group
    from its own initial lr, so merging equal groups does not change training.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        super().add_params(params, module, prefix=prefix, **kwargs)
        if not prefix:  # the outermost call, after recursing into every child
            params[:] = merge_param_groups(params)
