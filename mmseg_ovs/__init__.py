"""mmseg_ovs: open-vocabulary semantic segmentation for MMSegmentation 1.x.

``import mmseg_ovs`` registers every component into mmseg's registries (MODELS, DATASETS,
TRANSFORMS, HOOKS, ...) and routes MMEngine's local checkpoint loading through
``mmseg_ovs.utils.checkpoint.safe_torch_load`` (``weights_only=True`` with a closed allow-list).
"""
from .version import __version__
from .utils.checkpoint import register_checkpoint_safe_globals

register_checkpoint_safe_globals()

from . import datasets, engine, models  # noqa: E402,F401  (registration side effects)

__all__ = ['__version__']
