"""Dataloader workers that die with their process.

A rank killed with SIGKILL cannot stop its dataloader workers; PyTorch's worker watchdog only
notices the dead parent between batches and a worker blocked elsewhere stays alive (the issue:
640 MB workers still alive 10 minutes after the rank died). ``worker_init_with_parent_death``
seeds the worker exactly like MMEngine's default ``worker_init_fn`` and then asks the kernel
(Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``) to kill the worker as soon as its parent dies.
``tools/_runner_utils.build_runner`` installs it on every dataloader that has none configured.
"""
import ctypes
import os
import signal
import sys

from mmengine.dataset.utils import worker_init_fn as mmengine_worker_init_fn
from mmengine.registry import FUNCTIONS

__all__ = ['die_with_parent', 'worker_init_with_parent_death']

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int = None) -> bool:
    """Have this process receive SIGKILL when its parent exits (Linux; a no-op returning False
    elsewhere). ``parent_pid``: the expected parent, to close the race with a parent that died
    before the call (then this process exits at once)."""
    if not sys.platform.startswith('linux'):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return False
    if parent_pid is not None and os.getppid() != parent_pid:
        os._exit(1)
    return True


@FUNCTIONS.register_module()
def worker_init_with_parent_death(worker_id: int, num_workers: int, rank: int, seed: int,
                                  parent_pid: int = None, disable_subprocess_warning: bool = False) -> None:
    """MMEngine's worker seeding (``seed + rank * num_workers + worker_id`` for python, numpy,
    torch), then :func:`die_with_parent`."""
    mmengine_worker_init_fn(worker_id, num_workers, rank, seed, disable_subprocess_warning)
    die_with_parent(parent_pid)
