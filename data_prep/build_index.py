"""Sample index files for the training datasets (one row per sample, memory-mapped at training time).

    python data_prep/build_index.py cc3m DATA_ROOT OUT.npz [--sizes] [--workers 16]
    python data_prep/build_index.py coco DATA_ROOT OUT.npz --karpathy karpathy/dataset_coco.json [--img-dir train2014]
    python data_prep/build_index.py sa1b DATA_ROOT OUT.npz [--img-dir images] [--mask-dir annotations] [--count-masks]

* ``cc3m``: the shard folders of data_prep/cc3m_shards.py (``<shard>/<key>.jpg`` + ``<key>.txt``);
  columns ``img`` (relative to DATA_ROOT), ``caption`` (+ ``height``, ``width`` with ``--sizes``).
* ``coco``: Karpathy ``dataset_coco.json``, one row per caption of ``--split``; ``img`` relative to
  ``DATA_ROOT/--img-dir`` (= the superpixel key), ``caption``.
* ``sa1b``: images with a mask JSON of the same relative path; ``img``, ``mask`` (relative to
  DATA_ROOT), ``num_masks`` with ``--count-masks`` (-1 otherwise).

Rows without a caption / mask file are counted, listed in ``OUT.skipped.txt`` and left out. The walk
is done once here, per top-level folder, in parallel, with progress; each finished folder is saved in
``OUT.parts/`` (atomically), so an interrupted run resumes where it stopped; the index itself is
written atomically at the end. The datasets read it with ``ann_file=OUT.npz`` (format:
mmseg_ovs/datasets/sample_index.py).
"""
import argparse
import hashlib
import importlib.util
import json
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor

import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _load(name, rel):
    """A module of the package without importing the package (torch, mmseg): data_prep needs numpy."""
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, rel))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sample_index = _load('mmseg_ovs_sample_index', 'mmseg_ovs/datasets/sample_index.py')
IMG_EXTS = ('.jpg', '.jpeg', '.png', '.webp')


def _files(folder, exts):
    """Sorted relative paths of files under ``folder`` with one of ``exts`` (recursive, scandir)."""
    out, stack = [], ['']
    while stack:
        rel = stack.pop()
        with os.scandir(osp.join(folder, rel)) as it:
            for e in it:
                r = osp.join(rel, e.name) if rel else e.name
                if e.is_dir():
                    stack.append(r)
                elif e.name.lower().endswith(exts):
                    out.append(r)
    return sorted(out)


def _image_size(path):
    from PIL import Image
    with Image.open(path) as im:  # header only
        orient = im.getexif().get(0x0112, 1)
        w, h = im.size
    return (w, h) if orient in (5, 6, 7, 8) else (h, w)  # as decoded with EXIF orientation


def _cc3m_group(root, group, args):
    rows, skipped = [], []
    for rel in _files(osp.join(root, group), IMG_EXTS):
        rel = osp.join(group, rel)
        txt = osp.join(root, osp.splitext(rel)[0] + '.txt')
        try:
            with open(txt, encoding='utf-8') as f:
                caption = f.read().strip()
        except (OSError, UnicodeDecodeError) as err:
            skipped.append(f'{rel}\t{type(err).__name__}')
            continue
        if not caption:
            skipped.append(f'{rel}\tempty caption')
            continue
        rows.append(dict(img=rel, caption=caption, **_sizes(root, rel, args)))
    return rows, skipped


def _sa1b_group(root, group, args):
    rows, skipped = [], []
    img_dir = osp.join(root, args.img_dir)
    if group == '.':  # images directly in the image folder
        rels = sorted(e.name for e in os.scandir(img_dir) if e.is_file() and e.name.lower().endswith(IMG_EXTS))
    else:
        rels = [osp.join(group, r) for r in _files(osp.join(img_dir, group), IMG_EXTS)]
    for rel in rels:
        if not args.mask_dir:  # images only (online DINO masks)
            rows.append(dict(img=osp.join(args.img_dir, rel), **_sizes(img_dir, rel, args)))
            continue
        mask_rel = osp.join(args.mask_dir, osp.splitext(rel)[0] + '.json')
        mask = osp.join(root, mask_rel)
        if not osp.isfile(mask):
            skipped.append(f'{rel}\tno mask file {mask_rel}')
            continue
        num = -1
        if args.count_masks:
            try:
                with open(mask) as f:
                    num = len(json.load(f)['annotations'])
            except (OSError, ValueError, KeyError, TypeError) as err:
                skipped.append(f'{rel}\tunreadable mask file: {err}')
                continue
        rows.append(dict(img=osp.join(args.img_dir, rel), mask=mask_rel, num_masks=num,
                         **_sizes(img_dir, rel, args)))
    return rows, skipped


def _sizes(folder, rel, args):
    if not args.sizes:
        return {}
    try:
        h, w = _image_size(osp.join(folder, rel))
    except OSError:
        h = w = -1  # unreadable: the loader counts it as broken at training time
    return dict(height=h, width=w)


def _write_rows(path, rows, string_cols, int_cols, info=None):
    return sample_index.write_index(path, {c: [r[c] for r in rows] for c in string_cols},
                                    {c: [r[c] for r in rows] for c in int_cols}, info)


def _read_part(path, string_cols, int_cols):
    """A finished part -> ({column: list or int array}, skipped lines)."""
    idx = sample_index.SampleIndex(path)
    cols = {}
    for c in string_cols:
        blob, off = bytes(idx._arrays[f'{c}.blob']), np.asarray(idx._arrays[f'{c}.offsets'])
        cols[c] = [blob[a:b].decode('utf-8') for a, b in zip(off[:-1], off[1:])]
    for c in int_cols:
        cols[c] = np.array(idx._arrays[c])
    return cols, idx.info.get('skipped', [])


def build_grouped(root, out, groups, group_fn, string_cols, int_cols, args):
    """Run ``group_fn`` per group (resumable parts), then merge into ``out``."""
    from tqdm import tqdm
    parts = out + '.parts'
    os.makedirs(parts, exist_ok=True)

    def part_path(g):
        return osp.join(parts, hashlib.md5(g.encode()).hexdigest()[:16] + '.npz')

    todo = [g for g in groups if not osp.isfile(part_path(g))]
    print(f'{len(groups)} folders, {len(groups) - len(todo)} already indexed')

    def run(g):
        rows, skipped = group_fn(root, g, args)
        _write_rows(part_path(g), rows, string_cols, int_cols, dict(group=g, skipped=skipped))
        return len(rows)

    with ThreadPoolExecutor(max(1, args.workers)) as pool, tqdm(total=len(todo), desc='index folders') as bar:
        for _ in pool.map(run, todo):
            bar.update()
    cols = {c: [] for c in string_cols + int_cols}
    skipped = []
    for g in tqdm(groups, desc='merge'):
        part, s = _read_part(part_path(g), string_cols, int_cols)
        for c in string_cols:
            cols[c] += part[c]
        for c in int_cols:
            cols[c].append(part[c])
        skipped += s
    for c in int_cols:
        cols[c] = np.concatenate(cols[c]) if cols[c] else np.zeros(0, np.int64)
    return cols, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('dataset', choices=['cc3m', 'coco', 'sa1b'])
    parser.add_argument('data_root')
    parser.add_argument('out')
    parser.add_argument('--karpathy', default='karpathy/dataset_coco.json', help='coco: relative to DATA_ROOT')
    parser.add_argument('--split', nargs='+', default=['train'], help='coco: Karpathy split(s)')
    parser.add_argument('--img-dir', default=None, help="coco: '' ; sa1b: 'images'")
    parser.add_argument('--mask-dir', default='annotations', help="sa1b ('' : images only, for online DINO masks)")
    parser.add_argument('--count-masks', action='store_true', help='sa1b: parse every mask JSON for num_masks')
    parser.add_argument('--sizes', action='store_true', help='store height/width (reads image headers)')
    parser.add_argument('--workers', type=int, default=min(16, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    root = args.data_root
    if not osp.isdir(root):
        raise SystemExit(f'data root not found: {root}')
    size_cols = ['height', 'width'] if args.sizes else []
    if args.dataset == 'coco':
        args.img_dir = args.img_dir or ''
        ann = osp.join(root, args.karpathy)
        try:
            with open(ann) as f:
                images = json.load(f)['images']
        except (OSError, ValueError, KeyError) as err:
            raise SystemExit(f'{ann} is not a readable Karpathy dataset_coco.json: {err}')
        rows, skipped = [], []
        for im in images:
            if im.get('split') not in args.split:
                continue
            rel = osp.join(im.get('filepath', ''), im['filename'])
            extra = _sizes(osp.join(root, args.img_dir), rel, args)
            for sent in im.get('sentences', []):
                caption = (sent.get('raw') or '').strip()
                if caption:
                    rows.append(dict(img=rel, caption=caption, **extra))
                else:
                    skipped.append(f'{rel}\tempty caption')
        string_cols, int_cols = ['img', 'caption'], size_cols
        cols = {c: [r[c] for r in rows] for c in string_cols + int_cols}
    elif args.dataset == 'cc3m':
        groups = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.endswith('.parts'))
        string_cols, int_cols = ['img', 'caption'], size_cols
        cols, skipped = build_grouped(root, args.out, groups, _cc3m_group, string_cols, int_cols, args)
    else:
        args.img_dir = args.img_dir if args.img_dir is not None else 'images'
        img_dir = osp.join(root, args.img_dir)
        if not osp.isdir(img_dir):
            raise SystemExit(f'SA-1B image folder not found: {img_dir}')
        groups = sorted(e.name for e in os.scandir(img_dir) if e.is_dir())
        if any(e.is_file() for e in os.scandir(img_dir)):
            groups.append('.')
        string_cols, int_cols = (['img', 'mask'], ['num_masks'] + size_cols) if args.mask_dir else (['img'], size_cols)
        cols, skipped = build_grouped(root, args.out, groups, _sa1b_group, string_cols, int_cols, args)
    if not len(cols[string_cols[0]]):
        raise SystemExit(f'no sample found under {root} (skipped {len(skipped)})')
    n = sample_index.write_index(args.out, {c: cols[c] for c in string_cols}, {c: cols[c] for c in int_cols},
                                 dict(dataset=args.dataset, data_root=osp.abspath(root), skipped=len(skipped)))
    if skipped:
        with open(args.out + '.skipped.txt.tmp', 'w', encoding='utf-8') as f:
            f.write('\n'.join(skipped) + '\n')
        os.replace(args.out + '.skipped.txt.tmp', args.out + '.skipped.txt')
        print(f'skipped {len(skipped)} samples (listed in {args.out}.skipped.txt), e.g. {skipped[0]}')
    print(f'wrote {n} rows to {args.out}')
    return n, skipped


if __name__ == '__main__':
    main()
