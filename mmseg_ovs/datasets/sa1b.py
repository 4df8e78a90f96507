"""SA1BDataset: SA-1B-style folders of images and per-image mask JSON files."""
import os
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmseg.registry import DATASETS

__all__ = ['SA1BDataset']


@DATASETS.register_module()
class SA1BDataset(BaseDataset):
    """Unlabeled images with unlabeled masks (SA-1B, or SAM/DINO masks written by ``data_prep/``).

    Layout: ``data_root/<img_path>/**/<id>.jpg`` and ``data_root/<mask_path>/**/<id>.json`` (same
    relative path). ``ann_file`` (optional) lists relative image paths, one per line (e.g. a subset);
    otherwise the image folder is scanned. Images without a mask file are counted and skipped with a
    warning (or raise with ``strict=True``).
    """

    METAINFO = dict(classes=())

    def __init__(self, data_root: str = '', ann_file: str = '',
                 data_prefix: dict = dict(img_path='images', mask_path='annotations'),
                 img_suffix: str = '.jpg', mask_suffix: str = '.json', strict: bool = False, **kwargs):
        self.img_suffix, self.mask_suffix, self.strict = img_suffix, mask_suffix, strict
        super().__init__(data_root=data_root, ann_file=ann_file, data_prefix=data_prefix, **kwargs)

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
            from mmengine.logging import print_log
            print_log(f'SA1BDataset: skipped {msg}', logger='current', level=30)
        if not data:
            raise ValueError(f'SA1BDataset found no image with masks under {img_dir} / {mask_dir}')
        return data
