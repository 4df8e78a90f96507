"""DeviceAwareDistributedDataParallel: MMEngine's DDP wrapper that also runs on CPU-only machines."""
from mmengine.model import MMDistributedDataParallel
from mmengine.registry import MODEL_WRAPPERS  # the runner looks wrappers up here

__all__ = ['DeviceAwareDistributedDataParallel']


@MODEL_WRAPPERS.register_module()
class DeviceAwareDistributedDataParallel(MMDistributedDataParallel):
    """``MMDistributedDataParallel`` that drops ``device_ids`` when the module lives on the CPU.

    MMEngine's runner always passes ``device_ids=[LOCAL_RANK]``, which torch's DDP rejects for CPU
    modules; ``tools/train.py`` selects this wrapper (with the gloo backend) when CUDA is absent.
    """

    def __init__(self, module, device_ids=None, **kwargs):
        if next(module.parameters()).device.type == 'cpu':
            device_ids = None
        super().__init__(module=module, device_ids=device_ids, **kwargs)
