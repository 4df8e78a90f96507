"""Models: CLIP encoders, necks, heads, losses and segmentors (all registered in mmseg MODELS)."""
from . import (backbones, data_preprocessors, heads, losses, necks, pretrainers, segmentors,  # noqa: F401
               text_encoders)
