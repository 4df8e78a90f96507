"""Distributed faults on CPU/gloo with tools/dist_train.sh CFG 2: a SIGKILLed rank ends the job
within a bounded time with a clear message, and no process of the job (ranks, their persistent
dataloader workers, torchrun) is left alive a few seconds after."""
import glob
import os
import os.path as osp
import re
import signal
import sys
import time

from tests._kill_utils import start
from tests.utils import ROOT

CONFIG = osp.join(ROOT, 'configs/examples/clip_vit_fcn_toy.py')


def _rank_pids(torchrun_pid: int) -> dict:
    """{rank: pid} of torchrun's worker processes (their RANK environment variable)."""
    ranks = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open(f'/proc/{name}/stat') as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(')') + 2:].split()[1])
            if ppid != torchrun_pid:
                continue
            env = open(f'/proc/{name}/environ', 'rb').read().split(b'\0')
        except OSError:
            continue
        for item in env:
            if item.startswith(b'RANK='):
                ranks[int(item[5:])] = int(name)
    return ranks


def _children(pid: int) -> list:
    try:
        with open(f'/proc/{pid}/task/{pid}/children') as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def _descendants(pid: int) -> list:
    out, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            out.append(child)
            todo.append(child)
    return out


def _alive(pids) -> list:
    alive = []
    for p in pids:
        try:
            with open(f'/proc/{p}/stat') as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(')') + 2] != 'Z':
            alive.append(p)
    return alive


def _start_job(tmp_path, toy_data_root, timeout_s, port_offset):
    """tools/dist_train.sh CONFIG 2 (gloo), persistent workers; returns (proc, log, ranks) once both ranks
    train with their 2 dataloader workers each."""
    work = str(tmp_path / 'dist')
    log = str(tmp_path / 'dist.log')
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={toy_data_root}',
            f'val_dataloader.dataset.data_root={toy_data_root}', f'test_dataloader.dataset.data_root={toy_data_root}',
            'train_cfg.max_iters=100000', 'train_cfg.val_interval=100000', 'default_hooks.checkpoint.interval=100000',
            'default_hooks.logger.interval=1', 'train_dataloader.num_workers=2',
            'train_dataloader.persistent_workers=True', f'env_cfg.dist_cfg.timeout={timeout_s}']
    env = {'PYTHON': sys.executable, 'PORT': str(29500 + (os.getpid() + port_offset) % 1000), 'OMP_NUM_THREADS': '1'}
    proc = start(['bash', 'tools/dist_train.sh', CONFIG, '2', '--work-dir', work, *opts], log, env=env)
    deadline = time.time() + 180
    try:
        while True:
            assert proc.poll() is None, open(log).read()[-3000:]
            assert time.time() < deadline, open(log).read()[-3000:]
            logs = glob.glob(osp.join(work, '*', '*.log'))
            ranks = _rank_pids(proc.pid)
            if (logs and re.search(r'Iter\(train\) \[\s*3/', open(logs[0]).read()) and len(ranks) == 2
                    and all(len(_children(p)) >= 2 for p in ranks.values())):
                return proc, log, ranks
            time.sleep(0.05)
    except BaseException:
        for p in _alive([proc.pid] + _descendants(proc.pid)):
            os.kill(p, signal.SIGKILL)
        raise


def test_killed_rank_ends_the_job_and_leaves_no_process(tmp_path, toy_data_root):
    proc, log, ranks = _start_job(tmp_path, toy_data_root, 20, 7)
    job = [proc.pid] + _descendants(proc.pid)  # torchrun, 2 ranks, 4 workers (ranks have own sessions)
    try:
        assert len(job) >= 7, job
        t0 = time.time()
        os.kill(ranks[1], signal.SIGKILL)
        proc.wait(timeout=120)
        job_s = time.time() - t0
        while _alive(job) and time.time() - t0 < job_s + 10:
            time.sleep(0.05)
        all_s = time.time() - t0
        left = _alive(job)
    finally:
        for p in _alive(job):
            os.kill(p, signal.SIGKILL)
    text = open(log).read()
    assert not left, f'still alive {all_s:.1f}s after the kill: {left}'
    assert proc.returncode != 0
    assert re.search(r'exitcode\s*:\s*-9', text) and 'SIGKILL' in text, text[-3000:]
    assert job_s < 30, job_s  # bounded (collective timeout 20 s; torchrun notices the death sooner)
    # the workers die with their rank (PR_SET_PDEATHSIG), not up to 5 s later by PyTorch's watchdog
    assert all_s - job_s < 1.0, (job_s, all_s)
    print(f'job ({len(job)} processes) ended {job_s:.2f}s after rank 1 was killed; none left after {all_s:.2f}s')


def test_hung_rank_times_out_after_the_configured_collective_timeout(tmp_path, toy_data_root):
    """Rank 1 stopped (SIGSTOP: alive but silent, torchrun sees nothing): rank 0 raises gloo's timeout
    after env_cfg.dist_cfg.timeout seconds instead of waiting forever, and its workers die with it."""
    timeout_s = 5
    proc, log, ranks = _start_job(tmp_path, toy_data_root, timeout_s, 11)
    job = [proc.pid] + _descendants(proc.pid)
    rank0_job = [ranks[0]] + _descendants(ranks[0])
    try:
        t0 = time.time()
        os.kill(ranks[1], signal.SIGSTOP)
        while _alive(rank0_job) and time.time() - t0 < 60:
            time.sleep(0.05)
        rank0_s = time.time() - t0
        left = _alive(rank0_job)
    finally:
        for p in _alive(job):
            os.kill(p, signal.SIGKILL)
        proc.wait(timeout=60)
    assert not left, left
    assert timeout_s - 0.5 <= rank0_s < timeout_s + 15, rank0_s
    assert re.search(rf'Timed out waiting {timeout_s * 1000}ms', open(log).read()), open(log).read()[-3000:]
    print(f'rank 0 (and its workers) exited {rank0_s:.2f}s after rank 1 hung (timeout {timeout_s}s)')
