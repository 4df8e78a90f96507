"""Write Runner checkpoints that load with ``torch.load(weights_only=True)`` and no allow-listed
globals (issue 13; see ``mmseg_ovs/utils/checkpoint.py``)."""
from mmengine.hooks import Hook
from mmseg.registry import HOOKS

from mmseg_ovs.utils.checkpoint import encode_for_checkpoint

__all__ = ['WeightsOnlyCheckpointHook']


@HOOKS.register_module()
class WeightsOnlyCheckpointHook(Hook):
    """Encode the message hub's ``HistoryBuffer`` log buffers and every numpy array / scalar of a
    checkpoint (runtime info, meta, what other hooks add) as tagged plain values right before it is
    saved; ``safe_torch_load`` decodes them. ``tools/`` add this hook to every run."""

    priority = 'LOWEST'  # after every other hook's before_save_checkpoint

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        for key, value in list(checkpoint.items()):
            if key != 'state_dict':  # weights are tensors already
                checkpoint[key] = encode_for_checkpoint(value)
