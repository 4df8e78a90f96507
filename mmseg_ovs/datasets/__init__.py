"""Datasets (DATASETS) and transforms (TRANSFORMS)."""
from . import transforms  # noqa: F401
