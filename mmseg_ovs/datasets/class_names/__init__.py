"""Benchmark vocabularies as ``cls_<bench>.txt`` files (the SCLIP-family format).

One class per line, in label-id order; comma-separated synonyms on a line share that class id
(a segmentor scores every synonym and takes the max). ``cls_<bench>.txt`` holds mmseg's own
class names. Method-specific renamings live beside them as ``cls_<bench>_<variant>.txt``:

- ``voc21_segclip``: diningtable->table, pottedplant->plant, tvmonitor->monitor (SegCLIP
  ``seg_segmentation/datasets/pascal_voc.py``).
- ``context60_segclip``: aeroplane->airplane, pottedplant->plant, tvmonitor->monitor (SegCLIP
  ``pascal_context.py``).
- ``context59_pixelclip``: table->diningtable (PixelCLIP ``datasets/pc59.json``).

PixelCLIP's other vocabularies (voc20, ade150, coco_stuff171, cityscapes) equal mmseg's.

Example::

    >>> load_class_names('voc21', variant='segclip')[11]
    ['table']
    >>> load_class_names('context59_pixelclip') == load_class_names('context59', 'pixelclip')
    True
    >>> load_class_names('/path/to/my_names.txt')  # any file in the same format
"""
import os
import os.path as osp
from typing import List, Optional

CLASS_NAMES_DIR = osp.dirname(osp.abspath(__file__))

#: Canonical benchmark keys, in the field's usual reporting order.
BENCHMARKS = ('voc21', 'context60', 'coco_object', 'voc20', 'cityscapes', 'context59', 'ade150',
              'coco_stuff171')


def class_names_file(bench: str, variant: Optional[str] = None) -> str:
    """Path of the shipped ``cls_<bench>[_<variant>].txt``."""
    stem = f'cls_{bench}' + (f'_{variant}' if variant else '')
    path = osp.join(CLASS_NAMES_DIR, stem + '.txt')
    if not osp.isfile(path):
        known = sorted(f[4:-4] for f in os.listdir(CLASS_NAMES_DIR) if f.startswith('cls_'))
        raise FileNotFoundError(f'No class-name file {path!r} (bench={bench!r}, variant={variant!r}); '
                                f'shipped: {known}')
    return path


def parse_class_names(text: str, source: str = '<string>') -> List[List[str]]:
    """Parse the ``cls_*.txt`` format into ``[[name, synonym, ...], ...]`` (one entry per class)."""
    classes = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        names = [n.strip() for n in line.split(',')]
        if any(not n for n in names):
            raise ValueError(f'{source}:{lineno}: empty class name in {line!r}')
        classes.append(names)
    if not classes:
        raise ValueError(f'{source}: empty vocabulary (no class names)')
    return classes


def load_class_names(path_or_bench: str, variant: Optional[str] = None) -> List[List[str]]:
    """Load a vocabulary from a benchmark key (``'voc21'``, ...) or a ``.txt`` path.

    Returns:
        list[list[str]]: for each class (label-id order), its names/synonyms.
    """
    if osp.isfile(path_or_bench):
        if variant is not None:
            raise ValueError('variant applies to benchmark keys, not to file paths')
        path = path_or_bench
    elif path_or_bench.endswith('.txt') or os.sep in path_or_bench:
        raise FileNotFoundError(f'Class-name file not found: {path_or_bench!r}')
    else:
        path = class_names_file(path_or_bench, variant)
    with open(path, encoding='utf-8') as f:
        return parse_class_names(f.read(), source=path)


__all__ = ['BENCHMARKS', 'CLASS_NAMES_DIR', 'class_names_file', 'parse_class_names',
           'load_class_names']
