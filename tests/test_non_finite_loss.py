"""NonFiniteLossHook: a NaN loss skips the step (counted, logged with the sample ids), too many in a
row stop the run, the counters live in the checkpoint. Real mmengine Runner, a toy model."""
import os.path as osp

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.structures import BaseDataElement
from torch.utils.data import Dataset


class _ToyData(Dataset):
    def __init__(self, n=8, nan_at=()):
        self.n, self.nan_at = n, set(nan_at)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ds = BaseDataElement(metainfo=dict(img_path=f'img_{i}.jpg'))
        return dict(inputs=torch.full((4,), float(i)), data_samples=ds, nan=float('nan') if i in self.nan_at else 0.)


class _ToyModel(BaseModel):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(4, 1)

    def forward(self, inputs, data_samples=None, nan=None, mode='loss'):
        x = torch.stack(inputs) if isinstance(inputs, (list, tuple)) else inputs
        loss = self.fc(x).pow(2).mean()
        bad = torch.as_tensor(nan if not isinstance(nan, (list, tuple)) else list(nan), dtype=loss.dtype)
        return dict(loss=loss + bad.sum())


def _runner(work_dir, nan_at, max_iters, max_skips, resume=False):
    import mmseg_ovs  # noqa: F401
    from mmengine.runner import Runner
    return Runner(
        model=_ToyModel(), work_dir=str(work_dir), default_scope='mmseg',
        train_dataloader=dict(dataset=_ToyData(8, nan_at), sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=1, num_workers=0, collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=4, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='NonFiniteLossHook', max_consecutive_skips=max_skips)],
        resume=resume, randomness=dict(seed=0))


def test_nan_skips_step_logs_ids_and_checkpoints_counter(tmp_path, capsys):
    runner = _runner(tmp_path, nan_at=(1, 2), max_iters=4, max_skips=3)
    weights = []
    orig = runner.model.train_step

    def spy(data, optim_wrapper):
        out = orig(data, optim_wrapper)
        weights.append(runner.model.fc.weight.detach().clone())
        return out

    runner.model.train_step = spy
    runner.train()
    assert torch.equal(weights[1], weights[0]) and torch.equal(weights[2], weights[0])  # skipped
    assert not torch.equal(weights[3], weights[2]) and torch.isfinite(weights[3]).all()
    ow = runner.optim_wrapper
    assert ow.skipped_steps == 2 and ow.consecutive_skips == 0
    log = open(runner.logger.handlers[-1].baseFilename).read() if hasattr(runner.logger.handlers[-1], 'baseFilename') \
        else capsys.readouterr().out
    assert 'optimizer step skipped' in log and 'img_2.jpg' in log
    ckpt = torch.load(osp.join(tmp_path, 'iter_4.pth'), map_location='cpu', weights_only=True)
    assert ckpt['non_finite_loss'] == dict(skipped_steps=2, consecutive_skips=0)
    # resume continues the count (another run resumes from iter_4 with more NaN batches)
    runner2 = _runner(tmp_path, nan_at=(4, 5), max_iters=6, max_skips=3, resume=True)
    runner2.train()
    assert runner2.optim_wrapper.skipped_steps == 4 and runner2.optim_wrapper.consecutive_skips == 2


def test_consecutive_nan_stops_with_clear_error(tmp_path):
    from mmseg_ovs.engine import NonFiniteLossError
    runner = _runner(tmp_path, nan_at=range(8), max_iters=8, max_skips=2)
    with pytest.raises(NonFiniteLossError, match=r'3 consecutive non-finite losses.*img_2\.jpg'):
        runner.train()
    assert runner.iter == 2
