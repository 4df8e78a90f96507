"""Compact sharded storage of per-image superpixel id maps (SegCLIP's Felzenszwalb maps).

Layout of a store folder::

    meta.json                 {"num_shards": S, "params": {...}, "short_side": 224}
    sp_00000.npz ... sp_{S-1}  one compressed npz per shard (zlib), arrays uint16 (int32 if > 65535 ids)

An image key (e.g. its path relative to the image root) lives in shard ``crc32(key) % S``, so no
global index is needed; npz member names are the keys with ``/`` replaced by ``|``.
Each shard is written atomically (tmp file + ``os.replace``), so an interrupted run is resumed
by skipping the shards that exist.
"""
import json
import os
import os.path as osp
import zlib
from collections import OrderedDict
from typing import Dict

import numpy as np

__all__ = ['shard_of', 'shard_path', 'write_shard', 'SuperpixelStore']


def shard_of(key: str, num_shards: int) -> int:
    return zlib.crc32(key.encode('utf-8')) % num_shards


def shard_path(root: str, shard: int) -> str:
    return osp.join(root, f'sp_{shard:05d}.npz')


def _member(key: str) -> str:
    return key.replace('/', '|')


def write_shard(root: str, shard: int, maps: Dict[str, np.ndarray]) -> str:
    """Write one shard atomically; returns its path."""
    arrays = {}
    for key, m in maps.items():
        m = np.asarray(m)
        if m.ndim != 2:
            raise ValueError(f'superpixel map of {key!r} must be (H, W), got {m.shape}')
        arrays[_member(key)] = m.astype(np.uint16 if m.max(initial=0) < 65535 else np.int32)
    path = shard_path(root, shard)
    tmp = path + '.tmp.npz'
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


class SuperpixelStore:
    """Read superpixel maps by image key (keeps a few shards open; one instance per worker)."""

    def __init__(self, root: str, cache_shards: int = 4):
        meta_file = osp.join(root, 'meta.json')
        if not osp.isfile(meta_file):
            raise FileNotFoundError(f'superpixel store meta not found: {meta_file} '
                                    f'(run data_prep/segclip_superpixels.py)')
        with open(meta_file) as f:
            self.meta = json.load(f)
        self.root = root
        self.num_shards = int(self.meta['num_shards'])
        self.cache_shards = cache_shards
        self._open = OrderedDict()

    def _shard(self, shard: int):
        if shard in self._open:
            self._open.move_to_end(shard)
            return self._open[shard]
        path = shard_path(self.root, shard)
        if not osp.isfile(path):
            raise FileNotFoundError(f'superpixel shard missing: {path}')
        npz = np.load(path)
        self._open[shard] = npz
        if len(self._open) > self.cache_shards:
            self._open.popitem(last=False)[1].close()
        return npz

    def __getitem__(self, key: str) -> np.ndarray:
        shard = shard_of(key, self.num_shards)
        npz = self._shard(shard)
        member = _member(key)
        if member not in npz.files:
            raise KeyError(f'no superpixels for {key!r} in {shard_path(self.root, shard)}')
        return npz[member].astype(np.int64)
