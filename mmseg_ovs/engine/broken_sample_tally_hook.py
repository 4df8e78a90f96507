"""BrokenSampleTallyHook: the broken training samples skipped, summed over dataloader workers and ranks,
logged at every epoch end (every ``interval`` iterations for iteration-based loops) and at the end of
training, and kept in the checkpoints (message hub ``broken_samples`` / ``prepared_samples``, totals
over the whole run including earlier runs it resumed)."""
from typing import List, Tuple

import torch
from mmengine.dataset import ClassBalancedDataset, RepeatDataset
from mmengine.dist import all_reduce
from mmengine.hooks import Hook
from mmengine.runner import EpochBasedTrainLoop
from mmseg.registry import HOOKS

from mmseg_ovs.datasets.per_sample_seed import PerSampleSeedDataset
from mmseg_ovs.datasets.sample_tally import SampleTally

__all__ = ['BrokenSampleTallyHook', 'find_tallies']


def find_tallies(dataset) -> List[SampleTally]:
    """The :class:`SampleTally` of every dataset inside ``dataset`` (through Concat/Repeat/ClassBalanced
    and ``PerSampleSeedDataset``)."""
    if isinstance(dataset, (RepeatDataset, ClassBalancedDataset, PerSampleSeedDataset)):
        return find_tallies(dataset.dataset)
    if hasattr(dataset, 'datasets'):  # ConcatDataset and the like
        return [t for d in dataset.datasets for t in find_tallies(d)]
    tally = getattr(dataset, 'tally', None)
    return [tally] if isinstance(tally, SampleTally) else []


@HOOKS.register_module()
class BrokenSampleTallyHook(Hook):
    """Log how many training samples were broken (and replaced) since the last report, over all ranks.

    Args:
        interval (int): report every this many iterations when the train loop is iteration-based
            (epoch-based loops report at each epoch end). Default: 1000.

    ``tools/`` add this hook to every run. Reading the tallies is free; the report is one all-reduce of
    two numbers, at the same iterations on every rank.
    """

    priority = 'BELOW_NORMAL'

    def __init__(self, interval: int = 1000):
        self.interval = int(interval)
        self._tallies: List[SampleTally] = []
        self._reported: Tuple[int, int] = (0, 0)  # this rank's (prepared, broken) at the last report

    def before_train(self, runner) -> None:
        self._tallies = find_tallies(runner.train_dataloader.dataset)
        self._reported = self._rank_values()

    def _rank_values(self) -> Tuple[int, int]:
        values = [t.values() for t in self._tallies]
        return sum(v[0] for v in values), sum(v[1] for v in values)

    def _report(self, runner, where: str) -> None:
        if not self._tallies:
            return
        now = self._rank_values()
        delta = torch.tensor([now[0] - self._reported[0], now[1] - self._reported[1]], dtype=torch.float64)
        all_reduce(delta)  # sum over ranks (no-op when not distributed)
        self._reported = now
        prepared, broken = int(delta[0]), int(delta[1])
        hub = runner.message_hub
        total_prepared = int(hub.get_info('prepared_samples', 0)) + prepared
        total_broken = int(hub.get_info('broken_samples', 0)) + broken
        hub.update_info('prepared_samples', total_prepared)
        hub.update_info('broken_samples', total_broken)
        message = (f'{where}: {broken} broken training samples skipped (and replaced) of {prepared} prepared, '
                   f'all ranks and dataloader workers; {total_broken} of {total_prepared} in this run')
        runner.logger.log(30 if broken else 20, message)

    @staticmethod
    def _by_epoch(runner) -> bool:
        return isinstance(runner.train_loop, EpochBasedTrainLoop)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if not self._by_epoch(runner) and self.every_n_train_iters(runner, self.interval):
            self._report(runner, f'iteration {runner.iter + 1}')

    def after_train_epoch(self, runner) -> None:
        if self._by_epoch(runner):
            self._report(runner, f'epoch {runner.epoch + 1}')

    def after_train(self, runner) -> None:
        if not self._by_epoch(runner):  # what the last interval did not cover
            self._report(runner, 'end of training')
