"""ExactResumeHook with mmengine's Runner, in process: both train loops, a dataset and a model that draw
from the python, numpy and torch generators of the main process (num_workers=0, so the data-loader
replay of a resume draws from them too), and validation in between. Stopping after the first
checkpoint and resuming must give the uninterrupted run's losses and weights exactly; without the
hook it does not. Validation runs right after the checkpoint (before the resume point), as in a
real run with val_interval == checkpoint interval. With persistent dataloader workers, the samples
seeded per sample (PerSampleSeedSampler/Dataset) make the resume exact too."""
import itertools
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric, Evaluator
from mmengine.hooks import Hook
from mmengine.model import BaseModel
from mmengine.runner import Runner

from mmseg_ovs.engine import ExactResumeHook


class NoisyDataset(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):  # draws from numpy and python in the process that loads the sample
        return dict(inputs=torch.full((4,), i / 8) + torch.from_numpy(np.random.randn(4)).float() * 0.1
                    + random.random() * 0.1)


class NoisyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        y = self.fc(self.drop(x + torch.randn_like(x)))  # torch draws (dropout, noise)
        if mode == 'loss':
            return dict(loss=(y ** 2).mean())
        return [y]


class CountMetric(BaseMetric):
    def process(self, data_batch, data_samples):
        self.results.append(len(data_samples))

    def compute_metrics(self, results):
        return dict(n=sum(results))


class RecordLoss(Hook):
    def __init__(self):
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.losses[runner.iter + 1] = float(outputs['loss'])


def _run(work, by_epoch, length, resume_from=None, exact=True):
    record = RecordLoss()
    sampler = 'DefaultSampler' if by_epoch else 'InfiniteSampler'
    train_cfg = (dict(by_epoch=True, max_epochs=length, val_interval=1) if by_epoch
                 else dict(by_epoch=False, max_iters=length, val_interval=3))
    torch.manual_seed(1)  # the same initial weights in every run (the Runner seeds after the model exists)
    runner = Runner(
        model=NoisyModel(), work_dir=work,
        train_dataloader=dict(dataset=NoisyDataset(), sampler=dict(type=sampler, shuffle=True), batch_size=2,
                              num_workers=0, collate_fn=dict(type='default_collate')),
        val_dataloader=dict(dataset=NoisyDataset(), sampler=dict(type='DefaultSampler', shuffle=False),
                            batch_size=4, num_workers=0, collate_fn=dict(type='default_collate')),
        val_evaluator=Evaluator(CountMetric()), val_cfg=dict(),
        train_cfg=train_cfg, optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=by_epoch, interval=1 if by_epoch else 3),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[ExactResumeHook()] if exact else [], randomness=dict(seed=0),
        resume=resume_from is not None, load_from=resume_from, default_scope='mmengine')
    runner.register_hook(record)
    runner.train()
    return record.losses, {k: v.clone() for k, v in runner.model.state_dict().items()}


class _Crash(Exception):
    pass


class CrashAfter(Hook):
    """Ends the run abruptly after iteration ``n`` (after its checkpoint): an EpochBasedTrainLoop cannot
    be stopped inside an epoch otherwise (the subprocess tests of test_resume.py use SIGKILL)."""
    priority = 'LOWEST'

    def __init__(self, n):
        self.n = n

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.n:
            raise _Crash


@pytest.mark.parametrize('by_epoch,first,total,ckpt', [(False, 3, 7, 'iter_3.pth'), (True, 1, 3, 'epoch_1.pth')])
def test_resume_repeats_the_uninterrupted_run(tmp_path, by_epoch, first, total, ckpt):
    ref_losses, ref_weights = _run(str(tmp_path / 'straight'), by_epoch, total)
    _run(str(tmp_path / 'cut'), by_epoch, first)  # stops right after its first checkpoint
    losses, weights = _run(str(tmp_path / 'cut'), by_epoch, total, resume_from=str(tmp_path / 'cut' / ckpt))
    later = sorted(losses)
    assert later and later[0] > 1 and later[-1] == max(ref_losses)
    assert max(abs(losses[i] - ref_losses[i]) for i in later) <= 1e-6
    assert max(float((weights[k] - ref_weights[k]).abs().max()) for k in weights) <= 1e-6
    # the same resume without the hook repeats the generators' draws from the seed: a different run
    _run(str(tmp_path / 'cut_plain'), by_epoch, first, exact=False)
    plain, _ = _run(str(tmp_path / 'cut_plain'), by_epoch, total, exact=False,
                    resume_from=str(tmp_path / 'cut_plain' / ckpt))
    assert max(abs(plain[i] - ref_losses[i]) for i in later) > 1e-4


class NoisierDataset(NoisyDataset):
    def __getitem__(self, i):  # torch draws too (as torchvision's colour jitter does)
        item = super().__getitem__(i)
        item['inputs'] = item['inputs'] + torch.rand(4) * 0.1
        return item


_RUN_IDS = itertools.count()  # a new experiment (and default scope) per Runner, even within one second


def _run_workers(work, max_epochs, per_sample_seed, resume_from=None, crash=None, num_workers=2):
    """Epoch-based, dataloader workers (persistent) drawing the augmentation noise, checkpoints every 3
    iterations (4 batches per epoch); ``crash``: end abruptly after that iteration."""
    losses = {}

    class Rec(Hook):
        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses[runner.iter + 1] = float(outputs['loss'])

    dataset = dict(type='PerSampleSeedDataset', dataset=NoisierDataset()) if per_sample_seed else NoisierDataset()
    sampler = 'PerSampleSeedSampler' if per_sample_seed else 'DefaultSampler'
    torch.manual_seed(1)
    runner = Runner(
        model=NoisyModel(), work_dir=work,
        train_dataloader=dict(dataset=dataset, sampler=dict(type=sampler, shuffle=True), batch_size=2,
                              num_workers=num_workers, persistent_workers=num_workers > 0,
                              collate_fn=dict(type='default_collate')),
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs), optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=3),
                           sampler_seed=dict(type='DistSamplerSeedHook'),
                           logger=dict(type='LoggerHook', interval=100)),
        custom_hooks=[ExactResumeHook()], randomness=dict(seed=0), resume=resume_from is not None,
        load_from=resume_from, default_scope='mmseg', experiment_name=f'per_sample_seed_{next(_RUN_IDS)}')
    runner.register_hook(Rec())
    if crash:
        runner.register_hook(CrashAfter(crash))
    try:
        runner.train()
    except _Crash:
        pass
    return losses, {k: v.clone() for k, v in runner.model.state_dict().items()}


def test_epoch_loop_resumes_inside_the_epoch(tmp_path):
    """Checkpoints every 3 iterations, 4 batches per epoch: the run stops at iteration 3 (epoch 1) and
    resumes there instead of restarting epoch 1 (which would train its first 3 batches twice)."""
    ref, ref_w = _run_workers(str(tmp_path / 'straight'), 3, False, num_workers=0)
    _run_workers(str(tmp_path / 'cut'), 3, False, crash=3, num_workers=0)
    got, got_w = _run_workers(str(tmp_path / 'cut'), 3, False, resume_from=str(tmp_path / 'cut' / 'iter_3.pth'),
                              num_workers=0)
    assert sorted(got) == list(range(4, 13)) and sorted(ref) == list(range(1, 13))  # 12 = 3 epochs x 4
    assert max(abs(got[i] - ref[i]) for i in got) <= 1e-6
    assert max(float((got_w[k] - ref_w[k]).abs().max()) for k in got_w) <= 1e-6


def test_per_sample_seed_makes_resume_exact_with_persistent_workers(tmp_path):
    """With dataloader workers, their generators restart at a resume: the resumed run's augmentations
    differ (checked, plain sampler). Seeded per sample (PerSampleSeedSampler/Dataset) the resume at an
    epoch end (iteration 12) and inside an epoch (iteration 3) repeat the uninterrupted run exactly,
    also with another number of workers."""
    import mmseg_ovs  # noqa: F401  (registration)
    ref, ref_w = _run_workers(str(tmp_path / 'straight'), 4, True)
    assert sorted(ref) == list(range(1, 17))
    _run_workers(str(tmp_path / 'cut'), 4, True, crash=12)
    for ckpt, workers in (('iter_12.pth', 2), ('iter_3.pth', 1)):
        got, got_w = _run_workers(str(tmp_path / 'cut'), 4, True, resume_from=str(tmp_path / 'cut' / ckpt),
                                  num_workers=workers)
        first = int(ckpt[5:-4]) + 1
        assert sorted(got) == list(range(first, 17)), (ckpt, sorted(got))
        assert max(abs(got[i] - ref[i]) for i in got) <= 1e-6, ckpt
        assert max(float((got_w[k] - ref_w[k]).abs().max()) for k in got_w) <= 1e-6, ckpt
    # the same with the workers' own generators: the resumed epochs draw other augmentations
    plain_ref, _ = _run_workers(str(tmp_path / 'plain_straight'), 4, False)
    _run_workers(str(tmp_path / 'plain_cut'), 4, False, crash=12)
    plain, _ = _run_workers(str(tmp_path / 'plain_cut'), 4, False,
                            resume_from=str(tmp_path / 'plain_cut' / 'iter_12.pth'))
    assert max(abs(plain[i] - plain_ref[i]) for i in plain) > 1e-4


def test_per_sample_seed_dataset_refuses_plain_indices():
    from mmseg_ovs.datasets import PerSampleSeedDataset
    ds = PerSampleSeedDataset(NoisierDataset(), seed=3)
    assert len(ds) == 8
    a, b = ds[8 + 5], ds[8 + 5]  # epoch 0, sample 5: the same draws twice, the caller's streams untouched
    state = torch.get_rng_state()
    c = ds[16 + 5]  # epoch 1: other draws
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a['inputs'], b['inputs']) and not torch.equal(a['inputs'], c['inputs'])
    with pytest.raises(IndexError, match='PerSampleSeedSampler'):
        ds[5]
