"""COCOCaptionDataset: COCO Captions with the Karpathy split (image-text pairs)."""
import json
import os.path as osp
from typing import List

from mmseg.registry import DATASETS

from .indexed_dataset import IndexedDataset

__all__ = ['COCOCaptionDataset']


@DATASETS.register_module()
class COCOCaptionDataset(IndexedDataset):
    """COCO Captions, Karpathy split (``dataset_coco.json``), one sample per caption.

    SegCLIP trains on the Karpathy ``train`` split only (82,783 images, 414,113 captions; ``restval``
    excluded). Layout: ``data_root/<img_dir>/<filepath>/<filename>`` (e.g. ``train2014/...jpg``) and
    ``data_root/<ann_file>``. Each sample: ``img_path``, ``caption``, ``superpixel_key`` (the image
    path relative to ``img_dir``, the key used by data_prep/segclip_superpixels.py) and
    ``superpixel_root`` (the store folder, for :class:`LoadSuperpixels`).

    ``ann_file`` may instead be a sample index (``.npz``, one row per caption, columns ``img``
    relative to ``data_root/img_dir`` and ``caption``) written by ``data_prep/build_index.py coco``:
    nothing is parsed at start-up. Broken samples are skipped with a count (:class:`IndexedDataset`).

    Args:
        split (str | list[str]): Karpathy split(s) to use. Default 'train'.
        img_dir (str): image root under ``data_root``. Default ''.
    """

    METAINFO = dict(classes=())
    INDEX_COLUMNS = ('img', 'caption')

    def __init__(self, data_root: str = '', ann_file: str = 'karpathy/dataset_coco.json',
                 split='train', img_dir: str = '', superpixel_root: str = None,
                 **kwargs):
        self.superpixel_root = superpixel_root
        self.split = [split] if isinstance(split, str) else list(split)
        self.img_dir = img_dir
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def row_info(self, index, row: int) -> dict:
        rel = index.str('img', row)
        return dict(img_path=osp.join(self.data_root, self.img_dir, rel), caption=index.str('caption', row),
                    superpixel_key=rel, superpixel_root=self.superpixel_root, seg_fields=[])

    def load_data_list(self) -> List[dict]:
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'Karpathy COCO annotation not found: {self.ann_file}')
        try:
            with open(self.ann_file) as f:
                images = json.load(f)['images']
        except (ValueError, KeyError) as err:
            raise ValueError(f'{self.ann_file} is not a Karpathy dataset_coco.json: {err}') from err
        root = osp.join(self.data_root, self.img_dir)
        data = []
        for im in images:
            if im.get('split') not in self.split:
                continue
            rel = osp.join(im.get('filepath', ''), im['filename'])
            for sent in im['sentences']:
                data.append(dict(img_path=osp.join(root, rel), caption=sent['raw'].strip(),
                                 superpixel_key=rel, superpixel_root=self.superpixel_root,
                                 seg_fields=[]))
        if not data:
            raise ValueError(f'no captions of split {self.split} in {self.ann_file}')
        return data
