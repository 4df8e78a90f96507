"""Data transforms registered in mmseg TRANSFORMS."""
