"""Shared helpers of the benchmark converters: atomic PNG writes, progress, input checks."""
import os
import os.path as osp
from typing import Iterable, Iterator, Optional, TypeVar

import numpy as np
from PIL import Image

T = TypeVar('T')


class DataPrepError(RuntimeError):
    """A missing or malformed input; the message names the file."""


def require_file(path: str, what: str = 'file') -> str:
    if not osp.isfile(path):
        raise DataPrepError(f'missing {what}: {path}')
    return path


def require_dir(path: str, what: str = 'directory') -> str:
    if not osp.isdir(path):
        raise DataPrepError(f'missing {what}: {path}')
    return path


def save_png_atomic(array: np.ndarray, path: str) -> None:
    """Write a uint8 label map as PNG via ``<path>.tmp.png`` + ``os.replace`` (never half-written)."""
    if array.dtype != np.uint8:
        raise ValueError(f'{path}: label map must be uint8, got {array.dtype}')
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}.png'
    Image.fromarray(array).save(tmp, format='PNG')
    os.replace(tmp, path)


def write_text_atomic(text: str, path: str) -> None:
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def read_label_png(path: str) -> np.ndarray:
    """Read a single-channel (palette or grey) PNG as its raw index values."""
    try:
        with Image.open(path) as im:
            arr = np.array(im)
    except Exception as e:  # PIL raises several types for corrupt files
        raise DataPrepError(f'cannot read label map {path}: {e}') from e
    if arr.ndim != 2:
        raise DataPrepError(f'{path}: expected a single-channel label map, got shape {arr.shape}')
    return arr


def progress(items: Iterable[T], desc: str, total: Optional[int] = None) -> Iterator[T]:
    """tqdm progress bar (to stderr)."""
    from tqdm import tqdm
    return tqdm(items, desc=desc, total=total, unit='img', dynamic_ncols=True)


def apply_lut(label: np.ndarray, lut: np.ndarray, path: str = '<array>') -> np.ndarray:
    """Map raw ids through a 256-entry uint8 lookup table."""
    if label.dtype != np.uint8:
        if label.min() < 0 or label.max() > 255:
            raise DataPrepError(f'{path}: label ids outside 0..255 ({label.min()}..{label.max()})')
        label = label.astype(np.uint8)
    return lut[label]
