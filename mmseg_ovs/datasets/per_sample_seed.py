"""Per-sample random streams: every training sample's augmentation is drawn from generators seeded by
(seed, epoch, sample index), whichever process prepares it.

Dataloader workers normally draw augmentations from their own generators, seeded once when they
start. A resumed run starts new workers, so its augmentations differ from those of the run it
continues (with ``persistent_workers=True`` even after a resume at an epoch end, since the
uninterrupted run's workers carry their generators over from epoch to epoch). Seeding per sample
makes the augmentations a function of the epoch and the sample only, so a resume at an epoch end
or, with ``ExactResumeHook``, inside an epoch repeats the uninterrupted run exactly, with any number
of workers (also a different one).

Use the two together (the SegCLIP recipe does)::

    train_dataloader = dict(
        sampler=dict(type='PerSampleSeedSampler', shuffle=True),
        dataset=dict(type='PerSampleSeedDataset', dataset=dict(type='ConcatDataset', datasets=[...])))

The sampler yields keys ``(epoch + 1) * N + index`` (plain ints, so they pass any collate or worker
queue) instead of indices; the dataset decodes them, seeds python's ``random``, numpy's global and
torch's CPU generator with ``SeedSequence([seed, epoch, index])``, prepares ``dataset[index]`` and
restores the generators it found when it runs in the main process (its own streams, e.g. the
model's noise, are not touched when ``num_workers=0``). Cost per sample: ~40 us in a worker (against
~5 ms for the SegCLIP pipeline), ~0.4 ms in the main process. A broken sample's replacement
(mmengine's refetch) is drawn from the same seeded stream, so it is reproducible too. Given a plain index (another sampler) the dataset
raises instead of silently giving a sample the same augmentation in every epoch.
"""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dataset import DefaultSampler
from mmengine.dist import sync_random_seed
from mmseg.registry import DATA_SAMPLERS, DATASETS
from torch.utils.data import get_worker_info

__all__ = ['PerSampleSeedDataset', 'PerSampleSeedSampler']


@DATA_SAMPLERS.register_module()
class PerSampleSeedSampler(DefaultSampler):
    """mmengine's ``DefaultSampler`` (same order, same rank split, ``set_epoch``) yielding the keys
    ``(epoch + 1) * len(dataset) + index`` that :class:`PerSampleSeedDataset` reads."""

    def __iter__(self):
        offset = (self.epoch + 1) * len(self.dataset)
        return (offset + int(i) for i in super().__iter__())


@DATASETS.register_module()
class PerSampleSeedDataset(torch.utils.data.Dataset):
    """Wraps a dataset (config dict or object): ``self[key]`` prepares ``dataset[index]`` under
    generators seeded by ``(seed, epoch, index)`` (see module doc).

    Args:
        dataset (dict | Dataset): the wrapped dataset.
        seed (int, optional): base seed; default: one drawn after the runner's seeding and shared by
            the ranks (as ``DefaultSampler``'s), i.e. fixed by ``randomness.seed``.
    """

    def __init__(self, dataset, seed: Optional[int] = None):
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.seed = sync_random_seed() if seed is None else int(seed)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getattr__(self, name):  # full_init, metainfo lookups, ... of the wrapped dataset
        if name == 'dataset':
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, key: int):
        n = len(self.dataset)
        key = int(key)
        if key < n:
            raise IndexError(f'{type(self).__name__}: key {key} < {n}: this dataset expects the keys of '
                             "PerSampleSeedSampler (sampler=dict(type='PerSampleSeedSampler', ...)); with "
                             'plain indices every epoch would repeat the same augmentations')
        epoch, index = divmod(key, n)
        epoch -= 1
        seeds = np.random.SeedSequence([self.seed, epoch, index]).generate_state(3)  # 3 x uint32
        # a dataloader worker's own streams serve nothing else: seed them (~40 us); the main process's
        # (num_workers=0) are saved and restored around the sample (~0.4 ms, numpy's state is slow to copy)
        saved = None if get_worker_info() is not None else (random.getstate(), np.random.get_state(),
                                                             torch.get_rng_state())
        random.seed(int(seeds[0]))
        np.random.seed(int(seeds[1]))
        torch.default_generator.manual_seed(int(seeds[2]))
        try:
            return self.dataset[index]
        finally:
            if saved is not None:
                random.setstate(saved[0])
                np.random.set_state(saved[1])
                torch.set_rng_state(saved[2])
