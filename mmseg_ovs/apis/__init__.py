"""High-level inference APIs."""
from .ovs_inferencer import OVSInferencer, make_palette

__all__ = ['OVSInferencer', 'make_palette']
