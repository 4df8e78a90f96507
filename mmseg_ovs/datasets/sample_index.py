"""Sample index files: one row per training sample, memory-mapped, loaded in well under a second.

Format: an *uncompressed* ``.npz`` (a zip of ``.npy`` members, readable by plain ``np.load``) whose
members are memory-mapped in place (no copy, pages shared by every rank and dataloader worker):

* for each string column ``c``: ``c.blob`` (uint8, the UTF-8 bytes of all rows back to back) and
  ``c.offsets`` (int64, n + 1, row i is ``blob[offsets[i]:offsets[i + 1]]``);
* for each integer column ``c``: ``c`` (int32 or int64, n);
* ``__meta__``: a JSON document (uint8) with ``num_rows``, ``columns`` and free-form ``info``.

Why numpy rather than Arrow/Parquet: no new dependency, zero-copy memory mapping with numpy (Parquet
must be decoded into memory per process), and strings are read only for the rows a worker samples
(no 3.5 million Python objects per rank). The file is written atomically (tmp + ``os.replace``).
"""
import json
import os
import os.path as osp
import zipfile
from typing import Dict, Optional, Sequence

import numpy as np

__all__ = ['write_index', 'SampleIndex', 'encode_strings']


def encode_strings(values: Sequence[str]):
    """list of str -> (blob uint8, offsets int64 (n + 1,))."""
    encoded = [v.encode('utf-8') for v in values]
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    blob = np.frombuffer(b''.join(encoded), dtype=np.uint8)
    return blob, offsets


def write_index(path: str, strings: Dict[str, Sequence[str]], ints: Dict[str, Sequence[int]] = None,
                info: Optional[dict] = None) -> int:
    """Write an index (atomically). All columns must have the same length; returns the row count."""
    ints = ints or {}
    lengths = {len(v) for v in list(strings.values()) + list(ints.values())}
    if len(lengths) != 1:
        raise ValueError(f'index columns of {path} differ in length: '
                         f'{ {k: len(v) for k, v in {**strings, **ints}.items()} }')
    n = lengths.pop()
    arrays = {}
    for name, values in strings.items():
        arrays[f'{name}.blob'], arrays[f'{name}.offsets'] = encode_strings(values)
    for name, values in ints.items():
        arr = np.asarray(values)
        arrays[name] = arr.astype(np.int64 if arr.size and np.abs(arr).max() >= 2 ** 31 else np.int32)
    meta = dict(num_rows=n, strings=list(strings), ints=list(ints), info=info or {})
    arrays['__meta__'] = np.frombuffer(json.dumps(meta).encode('utf-8'), dtype=np.uint8)
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        np.savez(f, **arrays)  # uncompressed: members stay memory-mappable
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return n


def _mmap_npz(path: str) -> Dict[str, np.ndarray]:
    """Memory-map every member of an uncompressed npz (read-only)."""
    out = {}
    with zipfile.ZipFile(path) as zf, open(path, 'rb') as f:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f'{path}: member {info.filename} is compressed; sample indexes '
                                 f'must be written uncompressed (data_prep/build_index.py)')
            f.seek(info.header_offset)
            local = f.read(30)
            if local[:4] != b'PK\x03\x04':
                raise ValueError(f'{path}: corrupt zip member header ({info.filename})')
            name_len = int.from_bytes(local[26:28], 'little')
            extra_len = int.from_bytes(local[28:30], 'little')
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            if fortran or dtype.hasobject:
                raise ValueError(f'{path}: member {info.filename} is not a plain C array')
            key = info.filename[:-4] if info.filename.endswith('.npy') else info.filename
            if int(np.prod(shape)) == 0:
                out[key] = np.zeros(shape, dtype)
            else:
                out[key] = np.memmap(path, dtype=dtype, mode='r', offset=f.tell(), shape=shape)
    return out


class SampleIndex:
    """Read-only, memory-mapped sample index.

    ``index.str('img', i)`` and ``index.int('height', i)`` read one cell; ``valid_rows`` lists the rows
    whose string cells are well formed (non-empty, inside the blob); ``bad_rows`` counts the others.
    """

    def __init__(self, path: str, required=()):
        if not osp.isfile(path):
            raise FileNotFoundError(f'sample index not found: {path} (build it with data_prep/build_index.py)')
        try:
            self._arrays = _mmap_npz(path)
            meta = json.loads(bytes(self._arrays.pop('__meta__')).decode('utf-8'))
        except (zipfile.BadZipFile, KeyError, ValueError, OSError) as err:
            raise ValueError(f'{path} is not a readable sample index: {err}') from err
        self.path, self.meta = path, meta
        self.num_rows = int(meta['num_rows'])
        self.info = meta.get('info', {})
        missing = [c for c in required if c not in meta['strings'] and c not in meta['ints']]
        if missing:
            raise ValueError(f'{path} lacks the columns {missing} (has {meta["strings"] + meta["ints"]})')
        ok = np.ones(self.num_rows, dtype=bool)
        for name in meta['strings']:
            off = self._arrays[f'{name}.offsets']
            blob_len = len(self._arrays[f'{name}.blob'])
            if len(off) != self.num_rows + 1:
                raise ValueError(f'{path}: column {name!r} has {len(off) - 1} rows, expected {self.num_rows}')
            start, end = np.asarray(off[:-1]), np.asarray(off[1:])
            ok &= (end > start) & (start >= 0) & (end <= blob_len)
        self.bad_rows = int(self.num_rows - ok.sum())
        self.valid_rows = np.arange(self.num_rows) if self.bad_rows == 0 else np.flatnonzero(ok)

    def __len__(self) -> int:
        return self.num_rows

    def str(self, column: str, row: int) -> str:
        off = self._arrays[f'{column}.offsets']
        return bytes(self._arrays[f'{column}.blob'][off[row]:off[row + 1]]).decode('utf-8')

    def int(self, column: str, row: int) -> int:
        return int(self._arrays[column][row])

    def has(self, column: str) -> bool:
        return column in self.meta['strings'] or column in self.meta['ints']
