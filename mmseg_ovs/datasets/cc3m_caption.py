"""CC3MCaptionDataset: Conceptual Captions 3M (image-caption pairs) from a sample index or shard folders."""
import os
import os.path as osp
from typing import List

from mmengine.logging import print_log
from mmseg.registry import DATASETS

from .indexed_dataset import IndexedDataset

__all__ = ['CC3MCaptionDataset']


@DATASETS.register_module()
class CC3MCaptionDataset(IndexedDataset):
    """CC3M image-caption pairs.

    Recommended (any scale): ``ann_file='cc3m_index.npz'`` written by
    ``python data_prep/build_index.py cc3m DATA_ROOT cc3m_index.npz`` (columns ``img``: path relative
    to ``data_root``, ``caption``); nothing is walked or opened at start-up.

    Small data: the shard folders of ``data_prep/cc3m_shards.py`` (img2dataset ``files`` layout,
    ``data_root/<shard>/<key>.jpg`` + ``<key>.txt``) are scanned (or listed one ``<shard>/<key>.jpg``
    per line in a text ``ann_file``); images without a caption are counted and skipped.

    Each sample: ``img_path``, ``caption``, ``superpixel_key`` (the relative image path) and
    ``superpixel_root`` (the store of data_prep/segclip_superpixels.py, for :class:`LoadSuperpixels`).
    Broken samples are skipped with a count (see :class:`IndexedDataset`).
    """

    METAINFO = dict(classes=())
    INDEX_COLUMNS = ('img', 'caption')

    def __init__(self, data_root: str = '', ann_file: str = '', img_suffix: str = '.jpg',
                 superpixel_root: str = None, **kwargs):
        self.superpixel_root = superpixel_root
        self.img_suffix = img_suffix
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

    def row_info(self, index, row: int) -> dict:
        rel = index.str('img', row)
        return dict(img_path=osp.join(self.data_root, rel), caption=index.str('caption', row),
                    superpixel_key=rel, superpixel_root=self.superpixel_root, seg_fields=[])

    def load_data_list(self) -> List[dict]:
        root = self.data_root
        if self.ann_file:
            if not osp.isfile(self.ann_file):
                raise FileNotFoundError(f'CC3M list file not found: {self.ann_file}')
            with open(self.ann_file) as f:
                rels = [line.strip() for line in f if line.strip()]
        else:
            if not osp.isdir(root):
                raise FileNotFoundError(f'CC3M folder not found: {root}')
            rels = sorted(osp.relpath(osp.join(d, n), root) for d, _, files in os.walk(root)
                          for n in files if n.endswith(self.img_suffix))
        data, skipped = [], []
        for rel in rels:
            txt = osp.join(root, osp.splitext(rel)[0] + '.txt')
            caption = ''
            if osp.isfile(txt):
                with open(txt, encoding='utf-8') as f:
                    caption = f.read().strip()
            if not caption:
                skipped.append(txt)
                continue
            data.append(dict(img_path=osp.join(root, rel), caption=caption, superpixel_key=rel,
                             superpixel_root=self.superpixel_root, seg_fields=[]))
        if skipped:
            print_log(f'CC3MCaptionDataset: skipped {len(skipped)} images without a caption '
                      f'(first: {skipped[0]})', logger='current', level=30)
        if not data:
            raise ValueError(f'CC3MCaptionDataset found no captioned image under {root}')
        return data
