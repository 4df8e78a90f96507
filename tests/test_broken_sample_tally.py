"""Broken training samples are counted over all dataloader workers of a rank (SampleTally) and
logged per epoch, summed over ranks, by BrokenSampleTallyHook (MMEngine's Runner, real datasets)."""
import copy
import logging
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.config import Config
from mmengine.model import BaseModel
from torch.utils.data import DataLoader

from tests.utils import ROOT

NUM_BROKEN = 3


@pytest.fixture(autouse=True)
def mmseg_scope():
    import mmseg_ovs  # noqa: F401  (registration)
    from mmengine.registry import init_default_scope
    init_default_scope('mmseg')


@pytest.fixture
def sa1b_with_broken_images(toy_data_root, tmp_path):
    train = osp.join(str(tmp_path), 'train')
    shutil.copytree(osp.join(toy_data_root, 'train'), train)
    names = sorted(os.listdir(osp.join(train, 'images')))
    for name in names[:NUM_BROKEN]:
        path = osp.join(train, 'images', name)
        data = open(path, 'rb').read()
        open(path, 'wb').write(data[:len(data) // 3])
    return train


def _sa1b(train):
    from mmseg_ovs.datasets import SA1BDataset
    pipeline = Config.fromfile(osp.join(ROOT, 'configs/quickstart/pixelclip_toy.py')).train_pipeline
    return SA1BDataset(data_root=train, img_suffix='.png', data_prefix=dict(img_path='images', mask_path='sa1b'),
                       pipeline=pipeline, max_broken_fraction=0.5)


def test_tally_is_shared_by_the_dataloader_workers(sa1b_with_broken_images):
    from mmengine.dataset import pseudo_collate
    ds = _sa1b(sa1b_with_broken_images)
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=pseudo_collate, shuffle=False)
    yielded = sum(len(batch['inputs']) for batch in loader)
    assert yielded == len(ds) == 12
    # every prepare either yields a sample or counts a broken one; the broken ones were all visited
    assert ds.tally.prepared - ds.tally.broken == yielded
    assert ds.tally.broken >= NUM_BROKEN and ds.num_broken == ds.tally.broken
    from mmengine.dataset import ConcatDataset

    from mmseg_ovs.datasets import PerSampleSeedDataset
    from mmseg_ovs.engine.broken_sample_tally_hook import find_tallies
    assert find_tallies(PerSampleSeedDataset(ConcatDataset([ds, ds]), seed=0)) == [ds.tally, ds.tally]
    clone = copy.deepcopy(ds)  # a copy outside process spawning counts on its own
    assert clone.tally.values() == ds.tally.values()
    clone.tally.add(prepared=5)
    assert clone.tally.prepared == ds.tally.prepared + 5


class _CountingModel(BaseModel):
    """A real (tiny) model for the Runner: one parameter, a loss that depends on it."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, inputs, data_samples=None, mode='loss'):
        return dict(loss=self.weight.sum() * len(inputs))


def test_hook_logs_each_epochs_tally(sa1b_with_broken_images, tmp_path):
    from mmengine.runner import Runner
    ds = _sa1b(sa1b_with_broken_images)
    runner = Runner(
        model=_CountingModel(), work_dir=str(tmp_path / 'work'),
        train_dataloader=dict(dataset=ds, sampler=dict(type='DefaultSampler', shuffle=True), batch_size=4,
                              num_workers=2, collate_fn=dict(type='pseudo_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=2),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.0)),
        default_hooks=dict(checkpoint=None), custom_hooks=[dict(type='BrokenSampleTallyHook')],
        default_scope='mmseg', randomness=dict(seed=0))
    messages = []

    class _Collect(logging.Handler):
        def emit(self, record):
            messages.append(record.getMessage())

    runner.logger.addHandler(_Collect())
    runner.train()
    lines = [m for m in messages if 'broken training samples skipped' in m]
    assert [m.split(':')[0] for m in lines] == ['epoch 1', 'epoch 2'], lines
    import re
    totals = []
    for line in lines:
        broken, prepared = map(int, re.search(r': (\d+) broken .* of (\d+) prepared', line).groups())
        assert broken >= NUM_BROKEN and prepared - broken == 12, line  # the whole epoch, both workers
        totals.append((broken, prepared))
    assert runner.message_hub.get_info('broken_samples') == sum(b for b, _ in totals)
    assert runner.message_hub.get_info('prepared_samples') == sum(p for _, p in totals)


class _EveryThirdBroken(torch.utils.data.Dataset):
    """A minimal dataset counting into a SampleTally as IndexedDataset does (every third sample broken)."""

    def __init__(self):
        from mmseg_ovs.datasets.sample_tally import SampleTally
        self.tally = SampleTally()

    def __len__(self):
        return 12

    def __getitem__(self, idx):
        self.tally.add(prepared=1, broken=int(idx % 3 == 0))
        return idx


def test_tally_is_shared_with_spawned_workers():
    """Workers started with the 'spawn' method (the default on macOS, and with CUDA in workers) receive
    the shared counters while being spawned."""
    ds = _EveryThirdBroken()
    loader = DataLoader(ds, batch_size=3, num_workers=2, multiprocessing_context='spawn')
    assert sorted(int(i) for batch in loader for i in batch) == list(range(12))
    assert ds.tally.values() == (12, 4)
