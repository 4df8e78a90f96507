"""SA1BDataset: SA-1B-style images with per-image unlabeled-mask JSON files."""
import os
import os.path as osp
from typing import List

import numpy as np
from mmengine.logging import print_log
from mmseg.registry import DATASETS

from .indexed_dataset import IndexedDataset

__all__ = ['SA1BDataset']


@DATASETS.register_module()
class SA1BDataset(IndexedDataset):
    """Unlabeled images with unlabeled masks (SA-1B, or SAM/DINO masks written by ``data_prep/``).

    Recommended (any scale): ``ann_file='sa1b_index.npz'`` from ``python data_prep/build_index.py sa1b
    DATA_ROOT sa1b_index.npz`` (columns ``img``, ``mask`` relative to ``data_root``, ``num_masks``):
    nothing is walked or stat'ed at start-up.

    Small data: ``data_root/<img_path>/**/<id>.jpg`` and ``data_root/<mask_path>/**/<id>.json`` (same
    relative path) are scanned, or listed in a text ``ann_file`` (relative image paths, one per line).
    Images without a mask file are counted and skipped with a warning (or raise with ``strict=True``).

    ``with_masks=False``: images only (no mask file needed; e.g. PixelCLIP's online DINO masks, made by
    ``OnlineDINOMaskPreProcessor`` during training).

    Zero masks: an index whose every row has 0 masks is refused at start-up; a dataloader worker whose
    first ``zero_mask_check_after`` samples (or all samples, if fewer) carry no mask pixel at all
    raises (the loss would be exactly 0 for the whole run). Broken samples are skipped with a count
    (:class:`IndexedDataset`).
    """

    METAINFO = dict(classes=())
    INDEX_COLUMNS = ('img', 'mask')

    def __init__(self, data_root: str = '', ann_file: str = '',
                 data_prefix: dict = dict(img_path='images', mask_path='annotations'),
                 img_suffix: str = '.jpg', mask_suffix: str = '.json', strict: bool = False,
                 with_masks: bool = True, zero_mask_check_after: int = 50, **kwargs):
        self.img_suffix, self.mask_suffix, self.strict = img_suffix, mask_suffix, strict
        self.with_masks = with_masks
        if not with_masks:
            self.INDEX_COLUMNS = ('img', )
        self.zero_mask_check_after = zero_mask_check_after
        self.num_with_masks = self.num_checked = 0
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def row_info(self, index, row: int) -> dict:
        info = dict(img_path=osp.join(self.data_root, index.str('img', row)), seg_fields=[])
        if self.with_masks:
            info['mask_path'] = osp.join(self.data_root, index.str('mask', row))
        return info

    def check_index(self, index) -> None:
        if self.with_masks and index.has('num_masks'):
            counts = np.asarray(index._arrays['num_masks'])
            if counts.size and not counts.any():
                raise ValueError(f'{index.path}: every image has 0 masks; PixelCLIP would train with '
                                 f'a loss of exactly 0 (check the mask folder given to build_index.py)')

    def after_prepare(self, data) -> None:
        if self.num_with_masks or data is None:
            return
        sample = data.get('data_samples') if isinstance(data, dict) else None
        packed = getattr(sample, 'unlabeled_masks_packed', None)
        if packed is None:
            return
        self.num_checked += 1
        if bool(packed.any()):
            self.num_with_masks += 1
        elif self.num_checked >= min(self.zero_mask_check_after, len(self)):
            raise ValueError(
                f'SA1BDataset: none of the {self.num_checked} samples prepared so far has a mask pixel '
                f'(last: {sample.metainfo.get("mask_path")}); PixelCLIP would train with a loss of '
                f'exactly 0. Check the mask files (data_prefix.mask_path) and LoadUnlabeledMasks filters.')

    def load_data_list(self) -> List[dict]:
        img_dir, mask_dir = self.data_prefix['img_path'], self.data_prefix['mask_path']
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'SA-1B list file not found: {self.ann_file}')
            with open(self.ann_file) as f:
                rels = [line.strip() for line in f if line.strip()]
        else:
            if not osp.isdir(img_dir):
                raise FileNotFoundError(f'SA-1B image folder not found: {img_dir}')
            rels = sorted(osp.relpath(osp.join(r, n), img_dir) for r, _, files in os.walk(img_dir)
                          for n in files if n.endswith(self.img_suffix))
        if not self.with_masks:
            return [dict(img_path=osp.join(img_dir, rel), seg_fields=[]) for rel in rels]
        data, missing = [], []
        for rel in rels:
            mask = osp.join(mask_dir, osp.splitext(rel)[0] + self.mask_suffix)
            if not osp.isfile(mask):
                missing.append(mask)
                continue
            data.append(dict(img_path=osp.join(img_dir, rel), mask_path=mask, seg_fields=[]))
        if missing:
            msg = f'{len(missing)} images without a mask file (first: {missing[0]})'
            if self.strict:
                raise FileNotFoundError(msg)
            print_log(f'SA1BDataset: skipped {msg}', logger='current', level=30)
        if not data:
            raise ValueError(f'SA1BDataset found no image with masks under {img_dir} / {mask_dir}')
        return data
