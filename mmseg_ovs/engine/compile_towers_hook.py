"""``torch.compile`` of the image towers, switched on from the config (off by default).

    python tools/train.py CONFIG --cfg-options compile_image_towers=True
    python tools/train.py CONFIG --cfg-options "compile_image_towers={'mode':'max-autotune'}"

Each transformer block (ViT) or stage (ConvNeXt trunk) of ``model.backbone`` and, for PixelCLIP,
``model.teacher`` is compiled in place with ``nn.Module.compile``: parameter names, checkpoints and
the segmentors' own code paths (``embed``/``forward_blocks``/``dense_features``) stay unchanged, and
the Python-heavy parts (losses, Sinkhorn, masks) stay eager. mmengine's own ``compile`` option
compiles the whole ``train_step`` instead (graph breaks in the losses), so it is not used here.
"""
from typing import List, Optional, Union

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS
from torch import nn


def _tower_units(tower: nn.Module) -> List[nn.Module]:
    """The repeated compute units of an image tower: ViT blocks or ConvNeXt stages."""
    blocks = getattr(tower, 'blocks', None)  # OpenCLIPViT / PixelCLIPDenseViT
    if isinstance(blocks, nn.ModuleList):
        return list(blocks)
    trunk = getattr(getattr(tower, 'visual', None), 'trunk', None)  # open_clip TimmModel
    stages = getattr(trunk, 'stages', None)
    if isinstance(stages, (nn.Sequential, nn.ModuleList)):
        return list(stages)
    raise TypeError(f'do not know how to compile the image tower {type(tower).__name__}: '
                    'expected ViT blocks or a timm trunk with stages')


def compile_image_towers(model: nn.Module, **compile_kwargs) -> List[str]:
    """Compile the blocks of ``model.backbone`` (and ``model.teacher`` if present) in place.

    Args:
        model: a segmentor (SegCLIP, PixelCLIPSegmentor, DenseCLIPBaseline, CLIPPretrainer ...).
        compile_kwargs: passed to ``torch.compile`` (``mode``, ``backend``, ``dynamic``, ...).
    Returns:
        the names of the compiled modules.
    """
    compiled = []
    for tower_name in ('backbone', 'teacher'):
        tower = getattr(model, tower_name, None)
        if tower is None:
            continue
        for unit in _tower_units(tower):
            unit.compile(**compile_kwargs)
            compiled.append(next(n for n, m in model.named_modules() if m is unit))
    if not compiled:
        raise ValueError(f'{type(model).__name__} has no image tower (backbone/teacher) to compile')
    return compiled


@HOOKS.register_module()
class CompileImageTowersHook(Hook):
    """Compile the image towers before the run when switched on.

    Args:
        enabled: True/False, a dict of ``torch.compile`` kwargs (= enabled), or None (default): read
            the top-level config key ``compile_image_towers`` (False when absent).
    """

    priority = 'VERY_HIGH'

    def __init__(self, enabled: Optional[Union[bool, dict]] = None):
        self.enabled = enabled

    def before_run(self, runner) -> None:
        setting = self.enabled
        if setting is None:
            setting = runner.cfg.get('compile_image_towers', False)
        if not setting:
            return
        kwargs = dict(setting) if isinstance(setting, dict) else {}
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        names = compile_image_towers(model, **kwargs)
        runner.logger.info(f'torch.compile({kwargs}) on {len(names)} image-tower modules '
                           f'({names[0]} ... {names[-1]})')
