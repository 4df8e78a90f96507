"""SampleTally: counts of prepared and broken samples shared by a dataset's dataloader workers.

A dataset's copies in dataloader worker processes would each count on their own, so neither the
broken-sample threshold nor the logged tally would see the rank's whole picture. The counters live in
a ``multiprocessing`` shared array created with the dataset in the main process: forked workers
inherit it and spawned workers receive it while being spawned, so every worker of a rank adds to the
same counters (one pair per process, no lock), which the main process reads
(``BrokenSampleTallyHook`` sums them over ranks). A copy made any other way (``copy.deepcopy``,
``get_subset``, pickling to disk) starts from the same numbers and counts on its own.
"""
from multiprocessing import context as mp_context
from multiprocessing.sharedctypes import RawArray
from typing import Tuple

from torch.utils.data import get_worker_info

__all__ = ['SampleTally']

MAX_SLOTS = 256  # slot 0: the main process; slot 1 + k: dataloader worker k (mod 255 beyond)


def _slot() -> int:
    info = get_worker_info()
    return 0 if info is None else 1 + info.id % (MAX_SLOTS - 1)


class SampleTally:
    """Counters (prepared, broken) in shared memory, one pair per process slot (the main process, each
    dataloader worker), so that no lock is needed: each slot is written by one process only, and
    the totals are the sums over slots."""

    def __init__(self, prepared: int = 0, broken: int = 0):
        self._counts = RawArray('q', 2 * MAX_SLOTS)
        self._counts[0], self._counts[1] = int(prepared), int(broken)

    def add(self, prepared: int = 0, broken: int = 0) -> None:
        """Add to this process's counters (two shared-memory increments; no sum over slots)."""
        slot = _slot()
        self._counts[2 * slot] += prepared
        self._counts[2 * slot + 1] += broken

    def values(self) -> Tuple[int, int]:
        """The totals ``(prepared, broken)`` over the main process and every worker."""
        counts = self._counts[:]
        return int(sum(counts[0::2])), int(sum(counts[1::2]))

    @property
    def prepared(self) -> int:
        return self.values()[0]

    @property
    def broken(self) -> int:
        return self.values()[1]

    def __getstate__(self):
        if mp_context.get_spawning_popen() is not None:  # sent to a process being spawned: share
            return {'shared': self._counts}
        return {'values': self.values()}  # any other copy counts on its own

    def __setstate__(self, state):
        if 'shared' in state:
            self._counts = state['shared']
        else:
            self.__init__(*state['values'])

    def __repr__(self) -> str:
        prepared, broken = self.values()
        return f'SampleTally(prepared={prepared}, broken={broken})'
