"""Hooks and runner helpers registered in mmseg/mmengine registries."""
from .checkpoint_settings_hook import CheckpointModelSettingsHook, apply_model_settings
from .cuda_precision_hook import CUDAPrecisionHook, get_cuda_precision, set_cuda_precision
from .device_aware_ddp import DeviceAwareDistributedDataParallel
from .exact_resume_hook import ExactResumeHook
from .non_finite_loss import NonFiniteLossError, NonFiniteLossHook
from .worker_init import worker_init_with_parent_death
from .norm_decay_optim_constructor import NormDecayOptimWrapperConstructor
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook  # noqa: F401

__all__ = ['ExactResumeHook', 'worker_init_with_parent_death', 'CheckpointModelSettingsHook', 'apply_model_settings', 'CUDAPrecisionHook', 'get_cuda_precision',
           'set_cuda_precision', 'DeviceAwareDistributedDataParallel', 'NormDecayOptimWrapperConstructor',
           'NonFiniteLossError', 'NonFiniteLossHook']
