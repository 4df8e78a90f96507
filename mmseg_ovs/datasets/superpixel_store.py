"""Random-access store of per-image superpixel id maps (SegCLIP's Felzenszwalb maps).

Layout of a store folder::

    meta.json                       {"format": "segments-v1", "params": {...}}
    segments/<name>.bin             entries back to back: key (UTF-8) + zlib(map bytes)
    segments/<name>.idx.npy         one ENTRY_DTYPE row per entry of <name>.bin (its commit marker)
    table.npz                       (uncompressed, memory-mapped) ``entries`` TABLE_DTYPE sorted by key
                                    hash, ``buckets`` (2^b + 1 start rows), ``segments`` (JSON names)

A read is O(1): the top ``b`` bits of the key's 64-bit BLAKE2b hash give a bucket (about one entry
per bucket), the entry gives (segment, offset, length), one ``pread`` returns key + compressed map,
the stored key is compared with the requested one (no false hit), and zlib inflates the map.

Writing (data_prep/segclip_superpixels.py): each worker writes whole segments; a segment becomes
visible only when its ``.idx.npy`` is renamed into place after its ``.bin`` is complete, so a killed
run leaves no partial entry; a re-run skips exactly the images already in a committed segment (per
image, so images added since are picked up); ``table.npz`` is rebuilt atomically at the end.
"""
import hashlib
import json
import os
import os.path as osp
import zlib
from collections import OrderedDict
from typing import Dict, List

import numpy as np

__all__ = ['key_hash', 'write_segment', 'committed_hashes', 'build_table', 'SuperpixelStore',
           'ENTRY_DTYPE', 'TABLE_DTYPE']

ENTRY_DTYPE = np.dtype([('hash', '<u8'), ('offset', '<u8'), ('keylen', '<u4'), ('length', '<u4'),
                        ('h', '<u4'), ('w', '<u4'), ('itemsize', 'u1')])
TABLE_DTYPE = np.dtype([('hash', '<u8'), ('seg', '<u4'), ('offset', '<u8'), ('keylen', '<u4'),
                        ('length', '<u4'), ('h', '<u4'), ('w', '<u4'), ('itemsize', 'u1')])
_ITEM = {1: np.uint8, 2: np.uint16, 4: np.int32}


def _sample_index():
    """The sibling module (also when this file is loaded on its own by data_prep, without the package)."""
    try:
        from . import sample_index
    except ImportError:
        import importlib.util
        spec = importlib.util.spec_from_file_location('mmseg_ovs_sample_index',
                                                      osp.join(osp.dirname(osp.abspath(__file__)), 'sample_index.py'))
        sample_index = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sample_index)
    return sample_index


def key_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode('utf-8'), digest_size=8).digest(), 'little')


def _segments_dir(root: str) -> str:
    return osp.join(root, 'segments')


def write_segment(root: str, name: str, maps: Dict[str, np.ndarray], level: int = 6) -> str:
    """Write one segment atomically (``.bin`` then the ``.idx.npy`` commit marker); returns its path."""
    seg_dir = _segments_dir(root)
    os.makedirs(seg_dir, exist_ok=True)
    rows = np.zeros(len(maps), ENTRY_DTYPE)
    bin_path, idx_path = osp.join(seg_dir, name + '.bin'), osp.join(seg_dir, name + '.idx.npy')
    offset = 0
    with open(bin_path + '.tmp', 'wb') as f:
        for i, (key, m) in enumerate(maps.items()):
            m = np.asarray(m)
            if m.ndim != 2:
                raise ValueError(f'superpixel map of {key!r} must be (H, W), got {m.shape}')
            top = int(m.max(initial=0))
            dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32
            kb = key.encode('utf-8')
            payload = kb + zlib.compress(np.ascontiguousarray(m, dtype=dtype).tobytes(), level)
            f.write(payload)
            rows[i] = (key_hash(key), offset, len(kb), len(payload) - len(kb), m.shape[0], m.shape[1],
                       np.dtype(dtype).itemsize)
            offset += len(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(bin_path + '.tmp', bin_path)
    with open(idx_path + '.tmp', 'wb') as f:
        np.save(f, rows)
        f.flush()
        os.fsync(f.fileno())
    os.replace(idx_path + '.tmp', idx_path)
    return bin_path


def _committed(root: str) -> List[str]:
    seg_dir = _segments_dir(root)
    if not osp.isdir(seg_dir):
        return []
    names = sorted(n[:-len('.idx.npy')] for n in os.listdir(seg_dir) if n.endswith('.idx.npy'))
    return [n for n in names if osp.isfile(osp.join(seg_dir, n + '.bin'))]


def committed_hashes(root: str) -> np.ndarray:
    """Key hashes of every entry in a committed segment (what a re-run can skip)."""
    seg_dir = _segments_dir(root)
    parts = [np.load(osp.join(seg_dir, n + '.idx.npy'))['hash'] for n in _committed(root)]
    return np.concatenate(parts) if parts else np.zeros(0, np.uint64)


def build_table(root: str) -> int:
    """(Re)build ``table.npz`` from the committed segments (atomic); returns the number of entries.
    Leftover ``*.tmp`` files of a killed writer are removed."""
    seg_dir = _segments_dir(root)
    if osp.isdir(seg_dir):
        for n in os.listdir(seg_dir):
            if n.endswith('.tmp'):
                os.remove(osp.join(seg_dir, n))
    names = _committed(root)
    parts = []
    for s, name in enumerate(names):
        rows = np.load(osp.join(seg_dir, name + '.idx.npy'))
        t = np.zeros(len(rows), TABLE_DTYPE)
        for field in ENTRY_DTYPE.names:
            t[field] = rows[field]
        t['seg'] = s
        parts.append(t)
    table = np.concatenate(parts) if parts else np.zeros(0, TABLE_DTYPE)
    table = table[np.argsort(table['hash'], kind='stable')]
    if len(table) > 1:
        dup = np.flatnonzero(table['hash'][1:] == table['hash'][:-1])
        if len(dup):  # the same key written twice (e.g. two concurrent runs): keep the first
            table = np.delete(table, dup + 1)
    bits = max(1, int(np.ceil(np.log2(max(len(table), 2)))))
    edges = np.arange(2 ** bits, dtype=np.uint64) << np.uint64(64 - bits)
    buckets = np.searchsorted(table['hash'], edges).astype(np.int64)
    buckets = np.append(buckets, len(table))
    seg_json = np.frombuffer(json.dumps(names).encode('utf-8'), np.uint8)
    path = osp.join(root, 'table.npz')
    with open(path + '.tmp', 'wb') as f:
        np.savez(f, entries=table, buckets=buckets, segments=seg_json, bits=np.array([bits], np.int64))
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + '.tmp', path)
    return len(table)


class SuperpixelStore:
    """Read superpixel maps by image key, O(1) per read (open it once per dataloader worker).

    ``store[key]`` -> (H, W) int64; ``KeyError`` naming the key and store if absent.
    """

    def __init__(self, root: str, max_open_files: int = 64):
        meta_file, table_file = osp.join(root, 'meta.json'), osp.join(root, 'table.npz')
        if not osp.isfile(meta_file):
            raise FileNotFoundError(f'superpixel store meta not found: {meta_file} '
                                    f'(run data_prep/segclip_superpixels.py)')
        with open(meta_file) as f:
            self.meta = json.load(f)
        if self.meta.get('format') != 'segments-v1':
            raise ValueError(f'{root}: superpixel store of an older format ({self.meta.get("format", "npz shards")}); '
                             f'rewrite it with data_prep/segclip_superpixels.py')
        if not osp.isfile(table_file):
            raise FileNotFoundError(f'{table_file} missing: the writer was interrupted; re-run '
                                    f'data_prep/segclip_superpixels.py (it resumes)')
        arrays = _sample_index()._mmap_npz(table_file)
        self.root = root
        self.entries, self.buckets = arrays['entries'], arrays['buckets']
        self.shift = np.uint64(64 - int(arrays['bits'][0]))
        self.segments = json.loads(bytes(arrays['segments']).decode('utf-8'))
        self.max_open_files = max_open_files
        self._fds = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, key: str) -> bool:
        return self._find(key) is not None

    def _find(self, key: str):
        h = key_hash(key)
        b = int(np.uint64(h) >> self.shift)
        lo, hi = int(self.buckets[b]), int(self.buckets[b + 1])
        for i in range(lo, hi):
            e = self.entries[i]
            if int(e['hash']) == h:
                return e
        return None

    def _fd(self, seg: int) -> int:
        fd = self._fds.get(seg)
        if fd is None:
            fd = os.open(osp.join(_segments_dir(self.root), self.segments[seg] + '.bin'), os.O_RDONLY)
            self._fds[seg] = fd
            if len(self._fds) > self.max_open_files:
                os.close(self._fds.popitem(last=False)[1])
        else:
            self._fds.move_to_end(seg)
        return fd

    def __getitem__(self, key: str) -> np.ndarray:
        e = self._find(key)
        if e is None:
            raise KeyError(f'no superpixels for {key!r} in {self.root} (re-run data_prep/segclip_superpixels.py '
                           f'to add new images)')
        keylen, length = int(e['keylen']), int(e['length'])
        data = os.pread(self._fd(int(e['seg'])), keylen + length, int(e['offset']))
        if data[:keylen] != key.encode('utf-8') or len(data) != keylen + length:
            raise KeyError(f'superpixel store {self.root}: entry for {key!r} is corrupt or belongs to another key')
        arr = np.frombuffer(zlib.decompress(data[keylen:]), dtype=_ITEM[int(e['itemsize'])])
        return arr.reshape(int(e['h']), int(e['w'])).astype(np.int64)

    def __getstate__(self):  # file descriptors are per process
        state = self.__dict__.copy()
        state['_fds'] = OrderedDict()
        return state

    def __del__(self):
        for fd in getattr(self, '_fds', {}).values():
            try:
                os.close(fd)
            except OSError:
                pass
