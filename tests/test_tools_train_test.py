"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on a tiny synthetic dataset, with
torch's default ``weights_only=True`` checkpoint loading (load_from, --resume, test)."""
import ast
import glob
import json
import os
import os.path as osp
import pickle
import sys

import pytest
import torch

from tests.utils import ROOT, run_tool

CONFIG = osp.join(ROOT, 'configs/examples/clip_vit_fcn_toy.py')


def _options(data_root, iters, extra=()):
    return ['--cfg-options', f'train_dataloader.dataset.data_root={data_root}',
            f'val_dataloader.dataset.data_root={data_root}', f'test_dataloader.dataset.data_root={data_root}',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'default_hooks.checkpoint.interval={max(iters // 2, 1)}', 'train_dataloader.batch_size=2',
            *extra]


def test_weights_only_is_the_default():
    """The premise: torch refuses unknown globals by default (we never switch that off)."""
    assert torch.__version__ >= '2.6'
    import inspect
    assert inspect.signature(torch.load).parameters['weights_only'].default is None  # None -> True


@pytest.fixture(scope='module')
def trained_work(tmp_path_factory, toy_data_root):
    """tools/train.py for 4 iterations (checkpoints at 2 and 4), shared by the tests below."""
    work = str(tmp_path_factory.mktemp('train') / 'work')
    run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, *_options(toy_data_root, 4)])
    return work


def test_train_resume_and_test_with_weights_only(tmp_path, toy_data_root, trained_work):
    work = str(tmp_path / 'work')
    import shutil
    shutil.copytree(trained_work, work)
    ckpts = sorted(glob.glob(osp.join(work, 'iter_*.pth')))
    assert [osp.basename(c) for c in ckpts] == ['iter_2.pth', 'iter_4.pth']

    # Resume from the latest checkpoint and train 2 more iterations.
    proc = run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', work, '--resume',
                     *_options(toy_data_root, 6)])
    assert 'resumed epoch: 0, iter: 4' in proc.stdout + proc.stderr
    assert osp.isfile(osp.join(work, 'iter_6.pth'))

    # Resume from an explicit path into a fresh work dir (counts on from iteration 4).
    proc = run_tool([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(tmp_path / 'w2'), '--resume',
                     osp.join(work, 'iter_4.pth'), *_options(toy_data_root, 5)])
    assert 'resumed epoch: 0, iter: 4' in proc.stdout + proc.stderr
    assert osp.isfile(osp.join(tmp_path, 'w2', 'iter_5.pth'))

    # Evaluate the checkpoint; metrics land in the work dir.
    test_dir = str(tmp_path / 'test')
    out_dir = str(tmp_path / 'preds')
    show_dir = str(tmp_path / 'painted')
    run_tool([sys.executable, 'tools/test.py', CONFIG, osp.join(work, 'iter_6.pth'), '--work-dir', test_dir,
              '--out', out_dir, '--show-dir', show_dir, *_options(toy_data_root, 6)])
    assert len(glob.glob(osp.join(show_dir, '**', '*.png'), recursive=True)) == 8  # every image painted
    metrics = glob.glob(osp.join(test_dir, '*', '*.json'))
    assert metrics, os.listdir(test_dir)
    result = json.load(open(metrics[0]))
    assert 0.0 <= result['mIoU'] <= 100.0
    assert len(os.listdir(out_dir)) == 8  # one label map per validation image


def test_checkpoint_loads_under_weights_only(tmp_path, trained_work):
    """A Runner checkpoint written by tools/train.py needs no allow-listed global (plain
    torch.load(weights_only=True) reads it), while a pickle with a dangerous global is still refused."""
    path = osp.join(trained_work, 'iter_2.pth')
    # What torch would refuse, asked in a fresh interpreter (this one may have the allow-list already).
    probe = run_tool([sys.executable, '-c', 'import sys, torch; print(sorted('
                      'torch.serialization.get_unsafe_globals_in_checkpoint(sys.argv[1])))', path])
    needed = set(ast.literal_eval(probe.stdout.strip().splitlines()[-1]))
    assert needed == set()  # WeightsOnlyCheckpointHook encodes numpy / HistoryBuffer entries (issue 13)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    assert 'message_hub' in ckpt and 'state_dict' in ckpt and ckpt['meta']['iter'] == 2
    from mmengine.logging import HistoryBuffer

    from mmseg_ovs.utils.checkpoint import safe_torch_load
    decoded = safe_torch_load(path)  # the loader restores the message hub's log buffers
    buffers = decoded['message_hub']['log_scalars']
    assert buffers and all(isinstance(b, HistoryBuffer) for b in buffers.values())

    class Evil:
        def __reduce__(self):
            return (os.system, ('echo pwned',))

    evil = str(tmp_path / 'evil.pth')
    with open(evil, 'wb') as f:
        pickle.dump({'state_dict': Evil()}, f)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(evil, weights_only=True)


def test_dist_train_two_processes_on_cpu(tmp_path, toy_data_root):
    work = str(tmp_path / 'dist')
    env = {'PYTHON': sys.executable, 'PORT': str(29500 + os.getpid() % 1000)}
    run_tool(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work,
                     *_options(toy_data_root, 2)], env=env)
    log = open(glob.glob(osp.join(work, '*', '*.log'))[0]).read()
    assert 'Distributed training: True' in log and "dist_cfg: {'backend': 'gloo', 'timeout': 1800}" in log
    assert "type='DeviceAwareDistributedDataParallel'" in log
    assert 'Saving checkpoint at 2 iterations' in log and 'Iter(val) [2/2]' in log  # 8 val images / 2 ranks / batch 2
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
