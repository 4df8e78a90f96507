"""IndexedDataset: a BaseDataset that reads its samples lazily from a sample index and skips
broken samples with a count (instead of ending a multi-day run)."""
from typing import Optional

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .sample_index import SampleIndex
from .sample_tally import SampleTally

__all__ = ['IndexedDataset', 'BrokenDataError']


class BrokenDataError(RuntimeError):
    """Too many broken samples (more than ``max_broken_fraction``)."""


class IndexedDataset(BaseDataset):
    """Base class of the training datasets that read a sample index (``ann_file`` ending in ``.npz``,
    written by ``data_prep/build_index.py``; see :mod:`mmseg_ovs.datasets.sample_index`).

    With an index nothing is walked, opened or turned into Python dicts at start-up: ``__len__`` is the
    number of valid rows and :meth:`get_data_info` builds one sample dict on demand, so a
    3.5-million-row index is ready in well under a second per rank (mmengine's ``serialize_data``
    does not apply). Malformed rows (empty or out-of-range strings) are counted and logged at
    start-up and never sampled. Subclasses set ``INDEX_COLUMNS`` and implement :meth:`row_info`;
    without an index they fall back to their ``load_data_list``.

    Broken samples (unreadable image or mask file, bad RLE, wrong superpixel shape, ...): the error
    is logged with the sample's path and the sample is replaced by a random other one (mmengine's
    refetch), counted in :attr:`tally` (shared by all dataloader workers of the rank;
    ``BrokenSampleTallyHook`` logs the tally summed over ranks at every epoch end). When more than
    ``max_broken_fraction`` of the samples the rank prepared (checked after ``broken_check_after``
    samples) are broken, the run stops with :class:`BrokenDataError`. ``max_broken_fraction=0``
    re-raises the first error.
    """

    INDEX_COLUMNS = ()

    def __init__(self, *args, max_broken_fraction: float = 0.01, broken_check_after: int = 100,
                 **kwargs):
        self.max_broken_fraction = float(max_broken_fraction)
        self.broken_check_after = int(broken_check_after)
        self.tally = SampleTally()
        self._index: Optional[SampleIndex] = None
        self._rows = None
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ index
    def uses_index(self) -> bool:
        return isinstance(self.ann_file, str) and self.ann_file.endswith('.npz')

    def full_init(self):
        if self._fully_initialized:
            return
        if not self.uses_index():
            return super().full_init()
        index = SampleIndex(self.ann_file, required=self.INDEX_COLUMNS)
        if index.bad_rows:
            print_log(f'{type(self).__name__}: {index.bad_rows} of {index.num_rows} rows of {self.ann_file} '
                      f'are malformed (empty or out-of-range fields) and are skipped',
                      logger='current', level=30)
        if len(index.valid_rows) == 0:
            raise ValueError(f'{self.ann_file} has no valid sample row')
        self._index = index
        self._rows = None if index.bad_rows == 0 else index.valid_rows
        self.check_index(index)
        self._fully_initialized = True

    def check_index(self, index: SampleIndex) -> None:
        """Dataset-level checks at start-up (override)."""

    def row_info(self, index: SampleIndex, row: int) -> dict:
        raise NotImplementedError

    def __len__(self) -> int:
        if self.uses_index():
            if not self._fully_initialized:
                self.full_init()
            return len(self._index.valid_rows)
        return super().__len__()

    def get_data_info(self, idx: int) -> dict:
        if not self.uses_index():
            return super().get_data_info(idx)
        if not self._fully_initialized:
            self.full_init()
        row = int(idx if self._rows is None else self._rows[idx])
        info = self.row_info(self._index, row)
        info['sample_idx'] = row
        return info

    def __getstate__(self):  # memory maps are reopened in each process, never pickled
        state = self.__dict__.copy()
        if state.get('_index') is not None:
            state.update(_index=None, _rows=None, _fully_initialized=False)
        return state

    # ------------------------------------------------------------------ broken samples
    @property
    def num_prepared(self) -> int:
        """Samples prepared so far by this rank (main process and every dataloader worker)."""
        return self.tally.prepared

    @property
    def num_broken(self) -> int:
        """Broken samples skipped so far by this rank (main process and every dataloader worker)."""
        return self.tally.broken

    def prepare_data(self, idx):
        self.tally.add(prepared=1)
        try:
            data = super().prepare_data(idx)
        except Exception as err:  # noqa: BLE001  (any broken input; the policy decides)
            if self.max_broken_fraction <= 0 or self.test_mode:
                raise
            self.tally.add(broken=1)
            prepared, broken = self.tally.values()
            where = self._describe(idx)
            if broken <= 100 or broken % 1000 == 0:
                print_log(f'{type(self).__name__}: skipped broken sample {where}: {type(err).__name__}: {err} '
                          f'({broken} broken of {prepared} prepared on this rank)',
                          logger='current', level=30)
            if prepared >= self.broken_check_after and broken > self.max_broken_fraction * prepared:
                raise BrokenDataError(
                    f'{type(self).__name__}: {broken} of {prepared} samples are broken '
                    f'(> max_broken_fraction={self.max_broken_fraction}); last: {where}: {err}. '
                    f'Fix or re-index the data (data_prep/build_index.py), or raise max_broken_fraction.'
                ) from err
            return None
        self.after_prepare(data)
        return data

    def after_prepare(self, data) -> None:
        """Hook on every successfully prepared sample (override, e.g. for epoch-level checks)."""

    def _describe(self, idx) -> str:
        try:
            info = self.get_data_info(idx)
            return str(info.get('img_path', idx))
        except Exception:  # noqa: BLE001
            return f'index {idx}'
