"""Exact resume: the random number generators are part of the checkpoint.

MMEngine checkpoints hold the model, optimizer, schedulers and message hub, and on resume the
``IterBasedTrainLoop`` replays the data loader up to the resumed iteration (so the sampler position
and the dataloader workers' random state are those of an uninterrupted run). What they lack is the
main process's random state: SegCLIP's Gumbel noise and reconstruction masks, PixelCLIP's strong
view parameters drawn on the host, dropout, ... replay from iteration 1 after a resume.

This hook (added to every run by ``tools/``; see ``tools/_runner_utils.py``)

* stores the python / numpy / torch (CPU and CUDA) generator states of every rank under
  ``checkpoint['rng_states']`` (a list indexed by rank);
* on resume restores them at the exact point where they were captured: right before the batch of
  the first resumed iteration is fetched (after MMEngine's data-loader replay, which runs the
  pipeline in the main process when ``num_workers=0``);
* keeps validation from drawing on the training generators (validation during training would
  otherwise shift the training noise by the draws of the validation data-loader), so a run with a
  resume in between sees the same random stream as one without;
* resumes an ``EpochBasedTrainLoop`` inside an epoch where it stopped (MMEngine would restart the
  epoch and train its first part twice): the resumed epoch's sampler skips the samples already
  trained (all of them when an iteration checkpoint came after its last batch). Exact with
  ``num_workers=0``, or with dataloader workers whose samples are seeded per sample
  (``PerSampleSeedSampler``/``PerSampleSeedDataset``, the SegCLIP recipe); other workers' augmentation
  streams restart at a resume (the batches are the right ones, their random augmentations differ).
"""
import itertools
import logging
from typing import Optional

from mmengine.dist import all_gather_object, get_rank, get_world_size, is_distributed
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

from .rng_state import get_rng_state, set_rng_state

__all__ = ['ExactResumeHook']

RNG_KEY = 'rng_states'


class _RestoreRngBeforeFetch:
    """Wraps ``IterBasedTrainLoop.dataloader_iterator``: lets ``skip`` replayed batches through, then
    restores the RNG state right before the next batch is fetched and unwraps itself."""

    def __init__(self, loop, skip: int, state: dict):
        self._loop, self._iterator, self._remaining, self._state = loop, loop.dataloader_iterator, skip, state

    def __iter__(self):
        return self

    def __next__(self):
        if self._remaining > 0:
            self._remaining -= 1
            return next(self._iterator)
        set_rng_state(self._state)
        self._loop.dataloader_iterator = self._iterator
        return next(self._iterator)

    def __getattr__(self, name):
        return getattr(self._iterator, name)


class _SkipFirstSamples:
    """Sampler view without its first ``n`` indices: the part of an epoch trained before the resume.
    Restores the RNG state when iterated (the first fetch of the resumed epoch, after the data-loader
    iterator drew its base seed)."""

    def __init__(self, sampler, n: int, state: dict):
        self.sampler, self.n, self._state = sampler, n, state

    def __iter__(self):
        if self._state is not None:
            set_rng_state(self._state)
            self._state = None
        return itertools.islice(iter(self.sampler), self.n, None)

    def __len__(self):
        return max(len(self.sampler) - self.n, 0)

    def __getattr__(self, name):
        return getattr(self.sampler, name)


@HOOKS.register_module()
class ExactResumeHook(Hook):
    """Save every rank's RNG states in checkpoints and restore them on resume (see module doc)."""

    priority = 'LOW'  # after_train_iter/epoch: after the logger, before the CheckpointHook (VERY_LOW)

    def __init__(self):
        self._gathered: Optional[list] = None
        self._loaded: Optional[list] = None
        self._val_state: Optional[dict] = None
        self._skipping = None  # (batch_sampler, original sampler) while the resumed epoch runs

    # ------------------------------------------------------------------ saving
    @staticmethod
    def _checkpoint_due(runner, by_epoch: bool) -> bool:
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and hook.by_epoch == by_epoch:
                if by_epoch:
                    return hook.every_n_epochs(runner, hook.interval, hook.save_begin) or (
                        hook.save_last and hook.is_last_train_epoch(runner))
                return hook.every_n_train_iters(runner, hook.interval, hook.save_begin) or (
                    hook.save_last and hook.is_last_train_iter(runner))
        return False

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        # Runner.save_checkpoint runs on rank 0 only, so the other ranks' states are gathered here,
        # collectively, when the CheckpointHook (which runs next) is about to save.
        if is_distributed() and self._checkpoint_due(runner, by_epoch=False):
            self._gathered = all_gather_object(get_rng_state())

    def after_train_epoch(self, runner) -> None:
        if self._skipping is not None:  # the resumed epoch is over: later epochs are whole
            batch_sampler, sampler = self._skipping
            batch_sampler.sampler = sampler
            self._skipping = None
        if is_distributed() and self._checkpoint_due(runner, by_epoch=True):
            self._gathered = all_gather_object(get_rng_state())

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint[RNG_KEY] = self._gathered if self._gathered is not None else [get_rng_state()]
        self._gathered = None

    # ------------------------------------------------------------------ resuming
    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = checkpoint.get(RNG_KEY)

    def before_train(self, runner) -> None:
        loaded, self._loaded = self._loaded, None
        loop = runner.train_loop
        if loop.iter == 0 and loop.epoch == 0:
            return  # a fresh run, or load_from (fine-tuning): keep the seeded generators
        if not loaded:
            print_log('Resumed from a checkpoint without RNG states (written without ExactResumeHook): '
                      'random draws after the resume differ from an uninterrupted run.', logger='current',
                      level=logging.WARNING)
            return
        rank, world_size = get_rank(), get_world_size()
        if len(loaded) != world_size:
            print_log(f'The checkpoint holds the RNG states of {len(loaded)} rank(s), this run has '
                      f'{world_size}: rank {rank} uses those of rank {rank % len(loaded)}; the run will not '
                      'repeat the interrupted one exactly.', logger='current', level=logging.WARNING)
        state = loaded[rank % len(loaded)]
        if isinstance(loop, EpochBasedTrainLoop):
            n_batches = len(loop.dataloader)
            done = loop.iter - loop.epoch * n_batches  # batches of the resumed epoch already trained
            batch_sampler = getattr(loop.dataloader, 'batch_sampler', None)
            if 0 < done <= n_batches and batch_sampler is not None and hasattr(batch_sampler, 'sampler'):
                # MMEngine's EpochBasedTrainLoop would restart the epoch: skip what was trained instead (all
                # of it when an iteration checkpoint came after the epoch's last batch: only the epoch's
                # end, its hooks, schedulers and validation, runs then)
                self._skipping = (batch_sampler, batch_sampler.sampler)
                batch_sampler.sampler = _SkipFirstSamples(batch_sampler.sampler, done * batch_sampler.batch_size,
                                                          state)
                print_log(f'Resumed inside epoch {loop.epoch + 1}: its first {done} of {n_batches} batches '
                          'were trained before and are skipped.', logger='current')
            else:
                if done % n_batches != 0:
                    print_log(f'Resumed at iteration {loop.iter}, inside epoch {loop.epoch + 1}, with a '
                              'data loader whose sampler cannot skip: the epoch restarts.', logger='current',
                              level=logging.WARNING)
                set_rng_state(state)
        elif hasattr(loop, 'dataloader_iterator'):  # IterBasedTrainLoop: restore after the replay
            loop.dataloader_iterator = _RestoreRngBeforeFetch(loop, loop.iter, state)
        else:
            set_rng_state(state)
        print_log(f'Restored the RNG states of rank {rank % len(loaded)} from the checkpoint.', logger='current')

    # ------------------------------------------------------------------ validation
    def before_val(self, runner) -> None:
        self._val_state = get_rng_state()

    def after_val(self, runner) -> None:
        if self._val_state is not None:
            set_rng_state(self._val_state)
            self._val_state = None
