"""CC3MCaptionDataset: Conceptual Captions 3M downloaded with img2dataset (``files`` format)."""
import os
import os.path as osp
from typing import List

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmseg.registry import DATASETS

__all__ = ['CC3MCaptionDataset']


@DATASETS.register_module()
class CC3MCaptionDataset(BaseDataset):
    """CC3M image-caption shards as written by ``data_prep/cc3m_shards.py`` from the official TSV (the
    same layout as img2dataset's ``--output_format files``): ``data_root/<shard>/<key>.jpg`` with the
    caption in ``<key>.txt`` (one caption per image).

    The shard folders are scanned once (or listed in ``ann_file``, one ``<shard>/<key>.jpg`` per
    line). Images whose caption file is missing or empty are counted and skipped with a warning.
    Each sample: ``img_path``, ``caption``, ``superpixel_key`` (``<shard>/<key>.jpg``) and
    ``superpixel_root`` (the store of data_prep/segclip_superpixels.py, for :class:`LoadSuperpixels`).
    """

    METAINFO = dict(classes=())

    def __init__(self, data_root: str = '', ann_file: str = '', img_suffix: str = '.jpg',
                 superpixel_root: str = None, **kwargs):
        self.superpixel_root = superpixel_root
        self.img_suffix = img_suffix
        super().__init__(data_root=data_root, ann_file=ann_file, **kwargs)

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
