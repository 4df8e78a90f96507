"""Registered data preprocessors."""
from .ovs_data_preprocessor import OVSDataPreProcessor

__all__ = ['OVSDataPreProcessor']
