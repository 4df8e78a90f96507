"""AtomicCheckpointHook: a training process SIGKILLed while saving a checkpoint (max_keep_ckpts=1)
leaves a complete checkpoint behind, and --resume-style restarts continue from it.

The trainer is MMEngine's Runner in a subprocess with a tiny model; the kill is a real SIGKILL, sent
by the process itself at a fixed point of the save (deterministic) or by a watcher thread as soon as
the new checkpoint's file appears (anywhere inside the write or the rename)."""
import glob
import os
import os.path as osp
import subprocess
import sys
import textwrap

import torch

from mmseg_ovs.utils.checkpoint import safe_torch_load
from tests.utils import ROOT

SCRIPT = textwrap.dedent('''
    import os, signal, sys, threading, time
    import torch
    from torch import nn
    from mmengine.model import BaseModel
    from mmengine.hooks import Hook
    from mmengine.runner import Runner
    import mmseg_ovs  # noqa: F401  registers AtomicCheckpointHook

    work_dir, hook_type, kill_mode, kill_step, resume = sys.argv[1:6]
    kill_step = int(kill_step)

    class Tiny(BaseModel):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 64)
        def forward(self, inputs, labels=None, mode='loss'):
            out = self.linear(torch.stack(inputs) if isinstance(inputs, list) else inputs)
            return dict(loss=out.pow(2).mean()) if mode == 'loss' else out

    class KillDuringSave(Hook):
        priority = 'HIGHEST'
        def before_save_checkpoint(self, runner, checkpoint):
            step = runner.iter + 1
            if step != kill_step:
                return
            if kill_mode == 'before_write':  # after the hook decided what to delete, before any byte is written
                os.kill(os.getpid(), signal.SIGKILL)
            if kill_mode == 'during_write':
                final = os.path.join(work_dir, f'iter_{step}.pth')
                def watch():
                    while not (os.path.exists(final + '.tmp') or os.path.exists(final)):
                        time.sleep(0.0005)
                    os.kill(os.getpid(), signal.SIGKILL)
                threading.Thread(target=watch, daemon=True).start()
                checkpoint['padding'] = torch.zeros(4_000_000)  # a 16 MB write: a window to land in

    torch.manual_seed(0)  # the same data and initial weights in every run
    data = [dict(inputs=torch.randn(64)) for _ in range(8)]
    runner = Runner(
        model=Tiny(), work_dir=work_dir,
        train_dataloader=dict(dataset=data, sampler=dict(type='DefaultSampler', shuffle=False),
                              batch_size=2, collate_fn=dict(type='pseudo_collate'), num_workers=0),
        train_cfg=dict(by_epoch=False, max_iters=6),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(checkpoint=dict(type=hook_type, by_epoch=False, interval=1, max_keep_ckpts=1),
                           logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[KillDuringSave()], default_scope='mmseg', resume=resume == 'resume',
        randomness=dict(seed=0))
    runner.train()
''')


def _start(work, hook_type, kill_mode='none', kill_step=0, resume=False):
    script = osp.join(work, 'train_script.py')
    os.makedirs(work, exist_ok=True)
    with open(script, 'w') as f:
        f.write(SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1')
    return subprocess.Popen([sys.executable, script, work, hook_type, kill_mode, str(kill_step),
                             'resume' if resume else 'fresh'], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait(*procs):
    """Wait for trainers started side by side; returns (returncode, stderr) of each."""
    errs = [p.communicate(timeout=300)[1] for p in procs]
    return [(p.returncode, err) for p, err in zip(procs, errs)]


def _checkpoints(work):
    return sorted(osp.basename(p) for p in glob.glob(osp.join(work, '*.pth*')))


def test_kill_while_saving_keeps_a_complete_checkpoint(tmp_path):
    """Killed before the new checkpoint's first byte, and during its write (both runs side by side)."""
    from mmseg_ovs.engine.resume_checkpoint import check_checkpoint_readable, find_resume_checkpoint
    works = {mode: str(tmp_path / mode) for mode in ('before_write', 'during_write')}
    results = _wait(*[_start(work, 'AtomicCheckpointHook', mode, kill_step=3) for mode, work in works.items()])
    for (mode, work), (code, err) in zip(works.items(), results):
        assert code == -9, (mode, err[-3000:])
        names = _checkpoints(work)
        complete = [n for n in names if n.endswith('.pth')]
        assert complete in (['iter_2.pth'], ['iter_3.pth'], ['iter_2.pth', 'iter_3.pth']), (mode, names)
        for n in complete:
            check_checkpoint_readable(osp.join(work, n))  # never a truncated file under a final name
        pointer = open(osp.join(work, 'last_checkpoint')).read()
        assert osp.basename(pointer) in complete, (mode, pointer)
        path, skipped = find_resume_checkpoint(work)
        assert path is not None and skipped == [], mode

    results = _wait(*[_start(work, 'AtomicCheckpointHook', resume=True) for work in works.values()])
    for (mode, work), (code, err) in zip(works.items(), results):
        assert code == 0, (mode, err[-3000:])
        assert _checkpoints(work) == ['iter_6.pth'], mode  # stale .tmp removed, max_keep_ckpts=1 honoured
        ckpt = safe_torch_load(osp.join(work, 'iter_6.pth'))
        assert ckpt['meta']['iter'] == 6
        assert ckpt['message_hub']['runtime_info']['keep_ckpt_ids'] == [6]


def test_uninterrupted_run_matches_mmengine_checkpoint_hook(tmp_path):
    """Same files, same checkpoint content (but the write order) as MMEngine's CheckpointHook."""
    ours, theirs = str(tmp_path / 'ours'), str(tmp_path / 'theirs')
    for code, err in _wait(_start(ours, 'AtomicCheckpointHook'), _start(theirs, 'CheckpointHook')):
        assert code == 0, err[-3000:]
    assert _checkpoints(ours) == _checkpoints(theirs) == ['iter_6.pth']
    a = safe_torch_load(osp.join(ours, 'iter_6.pth'))
    b = safe_torch_load(osp.join(theirs, 'iter_6.pth'))
    assert all(torch.equal(a['state_dict'][k], b['state_dict'][k]) for k in b['state_dict'])
    assert a['message_hub']['runtime_info']['keep_ckpt_ids'] == b['message_hub']['runtime_info']['keep_ckpt_ids']
    assert open(osp.join(ours, 'last_checkpoint')).read().endswith('iter_6.pth')


def test_tools_use_the_atomic_hook_for_every_config():
    sys.path.insert(0, osp.join(ROOT, 'tools'))
    from _runner_utils import load_config
    for path in ('configs/quickstart/segclip_toy.py', 'configs/quickstart/pixelclip_toy.py',
                 'configs/examples/clip_vit_fcn_toy.py'):
        cfg = load_config(osp.join(ROOT, path), work_dir='/tmp/unused')
        assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook', path
    cfg = load_config(osp.join(ROOT, 'configs/quickstart/segclip_toy.py'), work_dir='/tmp/unused',
                      cfg_options={'default_hooks.checkpoint.type': 'CheckpointHook'})
    assert cfg.default_hooks.checkpoint.type == 'AtomicCheckpointHook'
