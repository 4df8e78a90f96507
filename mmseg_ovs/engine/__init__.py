"""Hooks and runner helpers registered in mmseg/mmengine registries."""
from .device_aware_ddp import DeviceAwareDistributedDataParallel

__all__ = ['DeviceAwareDistributedDataParallel']
