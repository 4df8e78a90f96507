"""NonFiniteLossHook: skip the optimizer step on a NaN/Inf loss instead of ending (or poisoning) a run.

The official SegCLIP loop (main_task_align.py, ``train_epoch``) skips ``optimizer.step()`` when the
loss is NaN ("loss is NAN (maybe caused by some wrong inputs)"), keeps the LR schedule running and
never stops. PixelCLIP (detectron2's SimpleTrainer) raises ``FloatingPointError`` at the first
non-finite loss; without a policy the mmengine port kept stepping and saved NaN weights.
"""
from typing import Optional

import torch
from mmengine.dist import all_reduce, get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmseg.registry import HOOKS

__all__ = ['NonFiniteLossHook', 'NonFiniteLossError', 'SkipNonFiniteMixin']


class NonFiniteLossError(FloatingPointError):
    """Too many consecutive non-finite losses."""


class SkipNonFiniteMixin:
    """``update_params`` that skips the step (and zeroes the gradients) when the loss is not finite on
    any rank (the flag is all-reduced, so every rank skips together and DDP replicas stay equal).
    Backward still runs, so DDP's gradient collectives stay matched across ranks."""

    max_consecutive_skips: Optional[int] = None
    skipped_steps: int = 0
    consecutive_skips: int = 0
    batch_ids: tuple = ()
    _window_bad: bool = False

    def update_params(self, loss: torch.Tensor, step_kwargs=None, zero_kwargs=None) -> None:
        bad = (~torch.isfinite(loss.detach())).any().float().reshape(1)
        if get_world_size() > 1:
            all_reduce(bad, op='sum')
        self._window_bad = self._window_bad or bool(bad.item() > 0)
        loss = self.scale_loss(loss)
        self.backward(loss)
        if not self.should_update():
            return
        if self._window_bad:
            self.zero_grad(**(zero_kwargs or {}))
            self.skipped_steps += 1
            self.consecutive_skips += 1
            ids = ', '.join(map(str, self.batch_ids[:8])) + (' ...' if len(self.batch_ids) > 8 else '')
            limit = self.max_consecutive_skips
            print_log(f'non-finite loss: optimizer step skipped ({self.consecutive_skips} in a row'
                      f'{f" of at most {limit}" if limit is not None else ""}, {self.skipped_steps} in '
                      f'total); batch: {ids or "?"}', logger='current', level=30)
            self._window_bad = False
            if limit is not None and self.consecutive_skips > limit:
                raise NonFiniteLossError(
                    f'{self.consecutive_skips} consecutive non-finite losses (max_consecutive_skips={limit}); '
                    f'last batch: {ids or "?"}. The run diverged or the data is broken: lower the LR, '
                    f'check the samples above, or resume from an earlier checkpoint.')
            return
        self.step(**(step_kwargs or {}))
        self.zero_grad(**(zero_kwargs or {}))
        self.consecutive_skips = 0
        self._window_bad = False


_SKIP_CLASSES = {}


def _skip_class(base: type) -> type:
    if issubclass(base, SkipNonFiniteMixin):
        return base
    if base not in _SKIP_CLASSES:
        _SKIP_CLASSES[base] = type(f'SkipNonFinite{base.__name__}', (SkipNonFiniteMixin, base), {})
    return _SKIP_CLASSES[base]


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Give the runner's optim wrapper (``OptimWrapper``, ``AmpOptimWrapper``, ...) the skip policy of
    :class:`SkipNonFiniteMixin`, feed it the sample ids of each batch for the log, and keep the counters
    in the checkpoint (``checkpoint['non_finite_loss']``) so a resumed run continues the count.

    Args:
        max_consecutive_skips (int | None): stop with :class:`NonFiniteLossError` after more than this
            many consecutive skipped steps. ``None`` never stops (the official SegCLIP behaviour).
        id_key (str): metainfo key naming a sample in the log. Default ``'img_path'``.
    """

    priority = 'VERY_HIGH'

    def __init__(self, max_consecutive_skips: Optional[int] = None, id_key: str = 'img_path'):
        if max_consecutive_skips is not None and max_consecutive_skips < 0:
            raise ValueError(f'max_consecutive_skips must be >= 0 or None, got {max_consecutive_skips}')
        self.max_consecutive_skips = max_consecutive_skips
        self.id_key = id_key
        self._state = dict(skipped_steps=0, consecutive_skips=0)

    def _wrappers(self, runner):
        ow = runner.optim_wrapper
        return list(ow.values()) if hasattr(ow, 'values') and not isinstance(ow, OptimWrapper) else [ow]

    def before_train(self, runner) -> None:
        for ow in self._wrappers(runner):
            ow.__class__ = _skip_class(type(ow))
            ow.max_consecutive_skips = self.max_consecutive_skips
            ow.skipped_steps = self._state['skipped_steps']
            ow.consecutive_skips = self._state['consecutive_skips']

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        ids = ()
        samples = data_batch.get('data_samples') if isinstance(data_batch, dict) else None
        if samples:
            ids = tuple(s.metainfo.get(self.id_key, s.metainfo.get('sample_idx', '?')) for s in samples)
        for ow in self._wrappers(runner):
            ow.batch_ids = ids

    def _collect(self, runner) -> dict:
        ows = [ow for ow in self._wrappers(runner) if isinstance(ow, SkipNonFiniteMixin)]
        if ows:
            self._state = dict(skipped_steps=max(ow.skipped_steps for ow in ows),
                               consecutive_skips=max(ow.consecutive_skips for ow in ows))
        return dict(self._state)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['non_finite_loss'] = self._collect(runner)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('non_finite_loss')
        if state:
            self._state = dict(skipped_steps=int(state['skipped_steps']),
                               consecutive_skips=int(state['consecutive_skips']))
            for ow in self._wrappers(runner):
                if isinstance(ow, SkipNonFiniteMixin):
                    ow.skipped_steps, ow.consecutive_skips = (self._state['skipped_steps'],
                                                              self._state['consecutive_skips'])

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        state = self._collect(runner)
        runner.message_hub.update_info('non_finite_skipped_steps', state['skipped_steps'])
