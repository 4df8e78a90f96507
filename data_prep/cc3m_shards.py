"""Conceptual Captions 3M from its official TSV into the shard folders CC3MCaptionDataset reads.

The official download is a TSV of ``caption<TAB>url`` rows (``Train_GCC-training.tsv``); the images
must be fetched from their URLs. Row ``i`` becomes ``OUT/<i // shard_size :05d>/<i :09d>.jpg`` (RGB
JPEG, upright, stored at the training resolution as the official code: short side 224 when both sides
are larger, see data_prep/training_images.py) plus ``<i :09d>.txt`` (the caption) -- the same layout as
img2dataset's ``files`` format.

    python data_prep/cc3m_shards.py Train_GCC-training.tsv data/cc3m [--workers 32] [--shard-size 10000]

Parallel (threads), with a progress bar; resumable (rows whose caption file exists are skipped);
atomic writes (the caption is written last, so a half-written row is never listed). Unreachable URLs
and undecodable images are counted and listed in ``OUT/failures.tsv``. Then compute superpixels with
``python data_prep/segclip_superpixels.py data/cc3m data/superpixels/cc3m`` and the sample index with
``python data_prep/build_index.py cc3m data/cc3m data/cc3m/index.npz``.
"""
import argparse
import io
import os
import os.path as osp
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import List, Optional, Tuple

from PIL import Image

try:
    from training_images import resize_short_side
except ImportError:
    from data_prep.training_images import resize_short_side


def read_tsv(path: str) -> List[Tuple[str, str]]:
    """(caption, url) rows; a malformed line is an error naming the file and line."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'CC3M TSV not found: {path}')
    rows = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line:
                continue
            parts = line.split('\t')
            if len(parts) != 2 or not parts[0].strip() or not parts[1].startswith(('http://', 'https://')):
                raise ValueError(f'{path}:{lineno}: expected "caption<TAB>url", got {line[:120]!r}')
            rows.append((parts[0].strip(), parts[1].strip()))
    return rows


def row_paths(out: str, index: int, shard_size: int) -> Tuple[str, str]:
    stem = osp.join(out, f'{index // shard_size:05d}', f'{index:09d}')
    return stem + '.jpg', stem + '.txt'


def fetch_row(out: str, index: int, caption: str, url: str, shard_size: int, timeout: float,
              max_short_side: int) -> Optional[str]:
    """Download and store one row; returns an error message or None."""
    img_path, txt_path = row_paths(out, index, shard_size)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
        img = Image.open(io.BytesIO(data))
        img.load()
        # upright (EXIF orientation), then the official storage size (short side 224, Lanczos)
        img = resize_short_side(img, max_short_side).convert('RGB')
    except Exception as err:  # noqa: BLE001 - any network or decoding failure is a counted skip
        return f'{index}\t{url}\t{type(err).__name__}: {err}'
    os.makedirs(osp.dirname(img_path), exist_ok=True)
    img.save(img_path + '.tmp', format='JPEG', quality=95)
    os.replace(img_path + '.tmp', img_path)
    with open(txt_path + '.tmp', 'w', encoding='utf-8') as f:
        f.write(caption)
    os.replace(txt_path + '.tmp', txt_path)
    return None


def build_shards(tsv: str, out: str, shard_size: int = 10000, workers: int = 32, timeout: float = 10.0,
                 max_short_side: int = 224, limit: int = 0):
    """Returns (written, already_done, failures)."""
    from tqdm import tqdm

    rows = read_tsv(tsv)
    if limit:
        rows = rows[:limit]
    os.makedirs(out, exist_ok=True)
    todo = [(i, c, u) for i, (c, u) in enumerate(rows) if not osp.isfile(row_paths(out, i, shard_size)[1])]
    done = len(rows) - len(todo)
    failures = []
    with ThreadPoolExecutor(max(1, workers)) as pool, tqdm(total=len(todo), desc='CC3M rows') as bar:
        futures = [pool.submit(fetch_row, out, i, c, u, shard_size, timeout, max_short_side) for i, c, u in todo]
        for fut in futures:
            err = fut.result()
            if err:
                failures.append(err)
            bar.update()
    if failures:
        with open(osp.join(out, 'failures.tsv.tmp'), 'w') as f:
            f.write('\n'.join(failures) + '\n')
        os.replace(osp.join(out, 'failures.tsv.tmp'), osp.join(out, 'failures.tsv'))
    return len(todo) - len(failures), done, failures


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('tsv')
    parser.add_argument('out')
    parser.add_argument('--shard-size', type=int, default=10000)
    parser.add_argument('--workers', type=int, default=32)
    parser.add_argument('--timeout', type=float, default=10.0)
    parser.add_argument('--max-short-side', type=int, default=224,
                        help='store at the training resolution as the official code: short side 224 when '
                             'both sides are larger (0: keep the downloaded size)')
    parser.add_argument('--limit', type=int, default=0, help='only the first N rows (0: all)')
    args = parser.parse_args()
    written, done, failures = build_shards(args.tsv, args.out, args.shard_size, args.workers, args.timeout,
                                           args.max_short_side, args.limit)
    print(f'written {written}, already done {done}, failed {len(failures)}'
          + (f' (see {osp.join(args.out, "failures.tsv")})' if failures else ''))


if __name__ == '__main__':
    main()
