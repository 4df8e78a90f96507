"""Registered data preprocessors."""
from .ovs_data_preprocessor import OVSDataPreProcessor
from .online_dino_masks import OnlineDINOMaskPreProcessor

__all__ = ['OVSDataPreProcessor', 'OnlineDINOMaskPreProcessor']
