"""mmseg_ovs: open-vocabulary semantic segmentation for MMSegmentation 1.x.

``import mmseg_ovs`` registers every component into mmseg's registries (MODELS, DATASETS,
TRANSFORMS, HOOKS, ...) and allow-lists the globals that MMEngine checkpoints need under
``torch.load(weights_only=True)``.
"""
from .version import __version__
from .utils.checkpoint import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, engine, models  # noqa: E402,F401  (registration side effects)

__all__ = ['__version__']
