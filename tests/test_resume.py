"""Exact resume after a real SIGKILL, and --resume robustness (tools/train.py).

For SegCLIP and PixelCLIP (the quickstart toy configs, tiny random CLIP, batch 4, 8 iterations,
checkpoints every 3): an uninterrupted run, and a run SIGKILLed between checkpoints then resumed
with ``--resume``. The resumed iterations' losses and the final weights must equal the uninterrupted
run's (max abs <= 1e-6 on CPU).
"""
import glob
import json
import os
import os.path as osp
import signal
import sys
import time

import pytest
import torch

from tests._kill_utils import start, wait_session_empty
from tests.utils import ROOT, run_tool

sys.path.insert(0, osp.join(ROOT, 'tools'))

ITERS, INTERVAL = 8, 3
TOL = 1e-6
METHODS = {
    'segclip': 'configs/quickstart/segclip_toy.py',
    'pixelclip': 'configs/quickstart/pixelclip_toy.py',
}


@pytest.fixture(scope='module')
def toy_with_superpixels(toy_data_root):
    sp = osp.join(toy_data_root, 'train', 'superpixels')
    if not osp.isdir(sp):
        run_tool([sys.executable, 'data_prep/segclip_superpixels.py', osp.join(toy_data_root, 'train'), sp,
                  '--workers', '1', '--short-side', '0', '--min-size', '18'])
    return toy_data_root


def _options(method, data, iters=ITERS):
    opts = [f'train_dataloader.dataset.data_root={data}/train', f'test_dataloader.dataset.data_root={data}',
            'model.backbone.pretrained=None', 'model.text_encoder.pretrained=None',
            'train_dataloader.batch_size=4', f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={INTERVAL}', 'default_hooks.checkpoint.max_keep_ckpts=-1',
            'default_hooks.logger.interval=1']
    if method == 'segclip':
        opts.append(f'train_dataloader.dataset.superpixel_root={data}/train/superpixels')
    return ['--cfg-options', *opts]


def _train_cmd(method, work, data, *extra, iters=ITERS):
    return [sys.executable, 'tools/train.py', METHODS[method], '--work-dir', work, *extra,
            *_options(method, data, iters)]


def _losses(work: str) -> dict:
    """{iteration: {loss name: value}} from every run's vis_data/scalars.json in ``work``."""
    out = {}
    for path in sorted(glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))):  # later runs win
        for line in open(path):
            rec = json.loads(line)
            if 'loss' in rec:
                out[int(rec['step'])] = {k: v for k, v in rec.items() if k.startswith('loss') or '.loss' in k}
    return out


def _weights(path: str) -> dict:
    from mmseg_ovs.utils.checkpoint import safe_torch_load
    return safe_torch_load(path)['state_dict']


def _max_abs(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


@pytest.fixture(scope='module')
def runs(tmp_path_factory, toy_with_superpixels):
    """Per method: the uninterrupted work dir, and the killed-then-resumed one with its resume step.
    The four first runs go in parallel, then the two resumes (the runs are mostly start-up)."""
    import subprocess
    data = toy_with_superpixels
    out, straight, killed = {}, {}, {}
    for method in METHODS:
        base = tmp_path_factory.mktemp(method)
        out[method] = dict(straight=str(base / 'straight'), killed=str(base / 'killed'), base=base)
        straight[method] = start(_train_cmd(method, out[method]['straight'], data), str(base / 'straight.log'))
        killed[method] = start(_train_cmd(method, out[method]['killed'], data), str(base / 'killed.log'))
    # SIGKILL each as soon as its first checkpoint is recorded: the run is then between checkpoints
    pending, deadline = set(METHODS), time.time() + 600
    while pending:
        for method in list(pending):
            r, proc = out[method], killed[method]
            assert proc.poll() is None, open(r['base'] / 'killed.log').read()[-4000:]
            if osp.isfile(osp.join(r['killed'], 'last_checkpoint')):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                pending.discard(method)
        assert time.time() < deadline
        time.sleep(0.01)
    for method in METHODS:
        out[method]['orphan_s'] = wait_session_empty(killed[method].pid, timeout=15)  # workers died with it
    # SegCLIP: as if the kill had come while the next checkpoint was written: a truncated newer file
    # that last_checkpoint names; --resume must pass over it and fall back to the complete one
    work = out['segclip']['killed']
    cut = osp.join(work, f'iter_{ITERS - 1}.pth')
    data_bytes = open(osp.join(work, f'iter_{INTERVAL}.pth'), 'rb').read()
    open(cut, 'wb').write(data_bytes[:len(data_bytes) // 2])
    open(osp.join(work, 'last_checkpoint'), 'w').write(cut)
    out['segclip']['truncated'] = cut
    resumed = {m: start(_train_cmd(m, out[m]['killed'], data, '--resume'), str(out[m]['base'] / 'resumed.log'))
               for m in METHODS}
    for method in METHODS:
        for proc, name in ((straight[method], 'straight'), (resumed[method], 'resumed')):
            try:
                proc.wait(timeout=600)
            except subprocess.TimeoutExpired:
                proc.kill()
            text = open(out[method]['base'] / f'{name}.log').read()
            assert proc.returncode == 0, text[-4000:]
        out[method]['log'] = text
        out[method]['step'] = int(text.split('resumed epoch: 0, iter: ')[1].split()[0])
    return out


@pytest.mark.parametrize('method', list(METHODS))
def test_killed_run_resumes_exactly(runs, method):
    r = runs[method]
    assert INTERVAL <= r['step'] < ITERS and r['step'] % INTERVAL == 0
    assert 'Restored the RNG states' in r['log']
    ref, got = _losses(r['straight']), _losses(r['killed'])
    later = [i for i in range(r['step'] + 1, ITERS + 1)]
    assert set(later) <= set(ref) and set(later) <= set(got), (sorted(ref), sorted(got))
    diffs = [abs(ref[i][k] - got[i][k]) for i in later for k in ref[i]]
    assert len(diffs) >= len(later) and max(diffs) <= TOL, (method, max(diffs))
    final = f'iter_{ITERS}.pth'
    diff = _max_abs(_weights(osp.join(r['straight'], final)), _weights(osp.join(r['killed'], final)))
    assert diff <= TOL, (method, diff)
    print(f'{method}: resumed at {r["step"]}, loss max abs {max(diffs):.3g}, weights max abs {diff:.3g}, '
          f'workers gone {r["orphan_s"]:.2f}s after the kill')


def test_truncated_newest_checkpoint_is_passed_over(runs):
    """The resumed SegCLIP run above found a truncated iter_7.pth named by last_checkpoint: it said so,
    fell back to the newest complete checkpoint, and (test above) still repeated the uninterrupted run."""
    r = runs['segclip']
    assert 'passing over' in r['log'] and r['truncated'] in r['log'] and 'truncated' in r['log']
    fallback = osp.join(r['killed'], 'iter_{}.pth'.format(r['step']))
    assert f'falling back to {fallback}' in r['log']


# --------------------------------------------------------------------------- resume resolution
def _resolve(*args):
    from train import resolve_resume
    return resolve_resume(*args)


def _fake_ckpt(path, value=0.0):
    torch.save({'meta': {'iter': 1}, 'state_dict': {'w': torch.tensor([value])}}, path)


def test_resume_without_checkpoint_needs_allow_fresh_start(tmp_path):
    work = str(tmp_path / 'typo')
    with pytest.raises(SystemExit, match=r'no checkpoint in the work dir .*typo.*--allow-fresh-start'):
        _resolve('auto', work, False)
    assert _resolve('auto', work, True) is None


def test_dangling_last_checkpoint_falls_back(tmp_path):
    _fake_ckpt(str(tmp_path / 'iter_2.pth'))
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))  # written, then deleted
    assert _resolve('auto', str(tmp_path), False) == str(tmp_path / 'iter_2.pth')


def test_newest_complete_checkpoint_wins_over_stale_pointer(tmp_path):
    _fake_ckpt(str(tmp_path / 'iter_2.pth'))
    _fake_ckpt(str(tmp_path / 'iter_10.pth'))  # killed after writing it, before updating the pointer
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert _resolve('auto', str(tmp_path), False) == str(tmp_path / 'iter_10.pth')


def test_only_unreadable_checkpoints_is_an_error_listing_them(tmp_path):
    (tmp_path / 'iter_3.pth').write_bytes(os.urandom(4096))
    with pytest.raises(SystemExit, match=r'no readable checkpoint \(1 unreadable\)'):
        _resolve('auto', str(tmp_path), False)


def test_random_bytes_resume_path_is_an_error_naming_it(tmp_path):
    bad = tmp_path / 'random bytes ü.pth'
    bad.write_bytes(os.urandom(10000))
    with pytest.raises(SystemExit, match='random bytes ü.pth'):
        _resolve(str(bad), str(tmp_path), False)


def test_killed_training_leaves_no_process(runs):
    """The SIGKILLed rank's dataloader workers (persistent, 2 per run) died with it."""
    for method in METHODS:
        assert runs[method]['orphan_s'] < 5, runs[method]['orphan_s']
