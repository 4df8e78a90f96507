"""Registered segmentors."""
from .dense_clip_baseline import DenseCLIPBaseline  # noqa: F401
