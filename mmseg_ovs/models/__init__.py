"""Models: CLIP encoders, necks, heads, losses and segmentors (all registered in mmseg MODELS)."""
from . import backbones, heads, losses, necks, pretrainers, segmentors, text_encoders  # noqa: F401
