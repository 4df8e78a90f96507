"""Optimizer constructor where ``custom_keys`` set learning rates without bypassing the norm rule.

mmengine's :class:`DefaultOptimWrapperConstructor` applies ``norm_decay_mult`` only to parameters
that match no ``custom_keys`` entry, so ``custom_keys={'backbone': dict(lr_mult=0.01)}`` silently
gives every norm layer of the backbone the full weight decay. PixelCLIP's official optimizer
(detectron2 ``train_net.py``, ``build_optimizer``) applies the learning-rate multipliers and the
norm rule independently: every parameter owned by a ``LayerNorm`` / ``GroupNorm`` / BatchNorm /
InstanceNorm module gets ``WEIGHT_DECAY_NORM`` (0.0), every ``nn.Embedding`` ``WEIGHT_DECAY_EMBED``
(0.0), whatever its learning rate. With ``finetune='full'`` (ConvNeXt) the trunk's norm layers
train, so this matters.

This constructor builds mmengine's groups, then re-applies ``norm_decay_mult`` (and the optional
``embed_decay_mult``) to trainable parameters of such modules that a custom key matched, unless
that key sets its own ``decay_mult``. Equal groups are merged afterwards when
``MergedGroupsOptimWrapperConstructor``'s helper is available (lossless: same lr/decay per parameter).
"""
from typing import List

from mmengine.optim import DefaultOptimWrapperConstructor
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn
from torch.nn import GroupNorm, LayerNorm
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

__all__ = ['NormDecayOptimWrapperConstructor', 'NORM_TYPES']

#: The norm types mmengine's constructor recognises (timm's LayerNorm/LayerNorm2d subclass LayerNorm).
NORM_TYPES = (_BatchNorm, _InstanceNorm, GroupNorm, LayerNorm)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class NormDecayOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """:class:`DefaultOptimWrapperConstructor` + ``norm_decay_mult`` / ``embed_decay_mult`` applied
    to parameters matched by ``custom_keys`` as well (detectron2 / PixelCLIP semantics).

    ``paramwise_cfg`` keys: as mmengine's, plus ``embed_decay_mult`` (``nn.Embedding`` weights).
    A custom key with an explicit ``decay_mult`` keeps it.
    """

    def add_params(self, params: List[dict], module: nn.Module, prefix: str = '', **kwargs) -> None:
        start = len(params)
        super().add_params(params, module, prefix=prefix, **kwargs)
        if prefix:  # recursion into a child; the outermost call fixes every group once
            return
        self._apply_module_decay_rules(params[start:], module)
        try:  # lossless merge of equal groups (fused optimizers), when the helper is available
            from .merged_groups_optim_constructor import merge_param_groups
        except ImportError:
            return
        params[start:] = merge_param_groups(params[start:])

    def _apply_module_decay_rules(self, groups: List[dict], model: nn.Module) -> None:
        if self.base_wd is None:
            return
        rules = {}
        norm_mult = self.paramwise_cfg.get('norm_decay_mult', None)
        embed_mult = self.paramwise_cfg.get('embed_decay_mult', None)
        custom_keys = self.paramwise_cfg.get('custom_keys', {})
        sorted_keys = sorted(sorted(custom_keys), key=len, reverse=True)  # mmengine's matching order
        for mod_name, mod in model.named_modules():
            if norm_mult is not None and isinstance(mod, NORM_TYPES):
                mult = norm_mult
            elif embed_mult is not None and isinstance(mod, nn.Embedding):
                mult = embed_mult
            else:
                continue
            for p_name, p in mod.named_parameters(recurse=False):
                full = f'{mod_name}.{p_name}'  # as mmengine matches custom keys ('.name' at the top)
                key = next((k for k in sorted_keys if k in full), None)
                if key is not None and 'decay_mult' in custom_keys[key]:
                    continue  # the user's explicit choice for this key wins
                rules[id(p)] = self.base_wd * mult
        for group in groups:
            if len(group['params']) != 1 or not group['params'][0].requires_grad:
                continue
            wd = rules.get(id(group['params'][0]))
            if wd is not None:
                group['weight_decay'] = wd
