"""Benchmark vocabularies as ``cls_<bench>.txt`` files (the SCLIP-family format).

One class per line, in label-id order; comma-separated synonyms on a line share that class id
(the text encoder averages their normalised embeddings). ``cls_<bench>.txt`` holds mmseg's own
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

Every vocabulary a user can give (config ``class_names``, ``set_vocabulary``, ``OVSInferencer``,
``tools/demo.py --vocab``) goes through :func:`parse_vocabulary`.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Union

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


#: What every vocabulary argument accepts (see :func:`parse_vocabulary`).
Vocabulary = Union[str, Sequence[Union[str, Sequence[str]]]]

#: Separator of synonyms inside one entry of a list (``'tv|monitor'``) or of ``--vocab``.
SYNONYM_SEP = '|'


def is_vocabulary_file_or_key(text: str, variant: Optional[str] = None) -> bool:
    """True if ``text`` names a class-name file or a shipped benchmark key (``'voc21'``,
    ``'context59_pixelclip'``)."""
    if osp.isfile(text):
        return True
    stem = f'cls_{text}' + (f'_{variant}' if variant else '')
    return osp.isfile(osp.join(CLASS_NAMES_DIR, stem + '.txt'))


def parse_vocabulary(vocabulary: Vocabulary, variant: Optional[str] = None) -> List[List[str]]:
    """The one parser of user vocabularies -> ``[[name, synonym, ...], ...]`` (label-id order).

    Accepted forms:

    * a benchmark key (``'voc21'``, ``'context59_pixelclip'``; ``variant='segclip'`` selects
      ``cls_voc21_segclip.txt``) or a ``cls_*.txt`` path;
    * a list whose entries are a name, a ``'tv|monitor'`` string of synonyms, or a list of synonyms.

    A string that is neither a key nor a file is an error (it would otherwise be split into
    characters or taken as one class silently). Empty names and names repeated within or across
    classes (case-insensitive) raise ``ValueError`` naming the entry.
    """
    if isinstance(vocabulary, str):
        if not is_vocabulary_file_or_key(vocabulary, variant):
            if vocabulary.endswith('.txt') or os.sep in vocabulary:
                raise FileNotFoundError(f'Class-name file not found: {vocabulary!r}')
            known = sorted(f[4:-4] for f in os.listdir(CLASS_NAMES_DIR) if f.startswith('cls_'))
            raise ValueError(f'vocabulary {vocabulary!r} is neither a benchmark key {known} nor a file; '
                             f'pass a list of class names for a custom vocabulary')
        classes = load_class_names(vocabulary, variant if not osp.isfile(vocabulary) else None)
    else:
        if variant is not None:
            raise ValueError('variant applies to benchmark keys, not to lists of names')
        if vocabulary is None or not hasattr(vocabulary, '__iter__'):
            raise TypeError(f'vocabulary must be a benchmark key, a file or a list of names, '
                            f'got {vocabulary!r}')
        classes = []
        for idx, entry in enumerate(vocabulary):
            if isinstance(entry, str):
                names = entry.split(SYNONYM_SEP)
            elif isinstance(entry, (list, tuple)) and all(isinstance(n, str) for n in entry):
                names = list(entry)
            else:
                raise TypeError(f'vocabulary entry {idx} must be a name or a list of synonyms, '
                                f'got {entry!r}')
            names = [n.strip() for n in names]
            if not names or any(not n for n in names):
                raise ValueError(f'vocabulary entry {idx} ({entry!r}) has an empty class name')
            classes.append(names)
    if not classes:
        raise ValueError('empty vocabulary (no class names)')
    seen = {}
    for idx, names in enumerate(classes):
        for name in names:
            key = name.lower()
            if key in seen:
                where = 'twice in' if seen[key] == idx else f'in entry {seen[key]} and'
                raise ValueError(f'duplicate class name {name!r} ({where} entry {idx}) in the vocabulary')
            seen[key] = idx
    return classes


def parse_vocabulary_text(text: str) -> List[List[str]]:
    """A command-line vocabulary (``--vocab``): a benchmark key, a file, or comma-separated names
    with ``'|'`` between synonyms (``"background,tv|monitor,plant"``)."""
    return parse_vocabulary(text if is_vocabulary_file_or_key(text) else text.split(','))


__all__ = ['BENCHMARKS', 'CLASS_NAMES_DIR', 'SYNONYM_SEP', 'Vocabulary', 'class_names_file',
           'parse_class_names', 'load_class_names', 'is_vocabulary_file_or_key', 'parse_vocabulary', 'parse_vocabulary_text']
