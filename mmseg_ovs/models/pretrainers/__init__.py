"""Registered pre-training models."""
from .clip_pretrainer import CLIPPretrainer, export_clip_state_dict

__all__ = ['CLIPPretrainer', 'export_clip_state_dict']
