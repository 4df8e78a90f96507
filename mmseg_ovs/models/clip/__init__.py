"""Thin helpers around open_clip: building CLIP models from local weights, templates, pos-embed resize."""
from .builder import build_open_clip, load_clip_weights, load_clip_weights_into
from .pos_embed import interpolate_pos_embed
from .templates import get_templates

__all__ = ['build_open_clip', 'load_clip_weights', 'load_clip_weights_into', 'interpolate_pos_embed',
           'get_templates']
