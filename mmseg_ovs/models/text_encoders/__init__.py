"""Registered text encoders."""
from .open_clip_text_encoder import OpenCLIPTextEncoder

__all__ = ['OpenCLIPTextEncoder']
