"""Hooks and runner helpers registered in mmseg/mmengine registries."""
from .atomic_checkpoint_hook import AtomicCheckpointHook
from .broken_sample_tally_hook import BrokenSampleTallyHook
from .checkpoint_settings_hook import CheckpointModelSettingsHook, apply_model_settings
from .compile_towers_hook import CompileImageTowersHook, compile_image_towers
from .cuda_precision_hook import CUDAPrecisionHook, get_cuda_precision, set_cuda_precision
from .device_aware_ddp import DeviceAwareDistributedDataParallel
from .exact_resume_hook import ExactResumeHook
from .merged_groups_optim_constructor import MergedGroupsOptimWrapperConstructor
from .non_finite_loss import NonFiniteLossError, NonFiniteLossHook
from .norm_decay_optim_constructor import NormDecayOptimWrapperConstructor
from .weights_only_checkpoint_hook import WeightsOnlyCheckpointHook  # noqa: F401
from .worker_init import worker_init_with_parent_death

__all__ = [
    'AtomicCheckpointHook', 'BrokenSampleTallyHook', 'CheckpointModelSettingsHook', 'apply_model_settings',
    'CompileImageTowersHook', 'compile_image_towers',
    'CUDAPrecisionHook', 'get_cuda_precision', 'set_cuda_precision', 'DeviceAwareDistributedDataParallel',
    'ExactResumeHook', 'MergedGroupsOptimWrapperConstructor', 'NonFiniteLossError', 'NonFiniteLossHook',
    'NormDecayOptimWrapperConstructor', 'worker_init_with_parent_death'
]
