"""Which checkpoint ``--resume`` continues from, robust to a run killed while writing one.

MMEngine writes ``iter_N.pth`` and then ``<work_dir>/last_checkpoint`` in place (not atomically), and
``--resume`` trusts ``last_checkpoint`` blindly: a run killed mid-write leaves a truncated newest
checkpoint or a ``last_checkpoint`` naming a missing file, and the resume then stops. Here the
candidates are ``last_checkpoint``'s target and every ``*.pth`` of the work dir, newest (highest
step) first; the first readable one is used and every one passed over is logged with the reason.
"""
import glob
import os.path as osp
import re
import zipfile
from typing import List, Optional, Tuple

__all__ = ['CheckpointUnreadable', 'check_checkpoint_readable', 'find_resume_checkpoint']


# torch's legacy (non-zip) format starts with its pickled magic number: PROTO 2, LONG1 of 10 bytes
LEGACY_TORCH_HEADER = b'\x80\x02\x8a\x0a'


class CheckpointUnreadable(RuntimeError):
    """A checkpoint file that cannot be loaded (missing, truncated, not a torch checkpoint)."""


def check_checkpoint_readable(path: str) -> None:
    """Raise :class:`CheckpointUnreadable` naming ``path`` unless it is a complete torch zip checkpoint
    (every member present and CRC-checked; this reads the file but unpickles nothing)."""
    if not osp.isfile(path):
        raise CheckpointUnreadable(f'checkpoint {path!r} does not exist')
    size = osp.getsize(path)
    if size == 0:
        raise CheckpointUnreadable(f'checkpoint {path!r} is empty (0 bytes)')
    if not zipfile.is_zipfile(path):
        with open(path, 'rb') as f:
            head = f.read(4)
        if head == LEGACY_TORCH_HEADER:  # torch < 1.6 format: no directory to check without loading it
            return
        raise CheckpointUnreadable(f'checkpoint {path!r} ({size} bytes) is truncated or not a torch '
                                   'checkpoint: no zip directory found')
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
            if not any(n.endswith('/data.pkl') or n == 'data.pkl' for n in names):
                raise CheckpointUnreadable(f'checkpoint {path!r} is a zip file without data.pkl: '
                                           'not a torch checkpoint')
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise CheckpointUnreadable(f'checkpoint {path!r} is corrupt: {e}') from e
    if bad is not None:
        raise CheckpointUnreadable(f'checkpoint {path!r} is corrupt: member {bad!r} fails its CRC check')


_STEP_NAME = re.compile(r'(iter|epoch)_(\d+)\.pth$')


def _order_key(path: str) -> Tuple[int, int, float]:
    """Numbered checkpoints by step, then the rest (``best_*.pth``) by modification time."""
    m = _STEP_NAME.search(osp.basename(path))
    mtime = osp.getmtime(path) if osp.exists(path) else 0.0
    return (1, int(m.group(2)), mtime) if m else (0, 0, mtime)


def _candidates(work_dir: str) -> Tuple[List[str], Optional[str]]:
    """(paths newest first, the ``last_checkpoint`` target or None)."""
    last = None
    pointer = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(pointer):
        with open(pointer, errors='replace') as f:
            last = f.read().strip() or None
    paths = {osp.abspath(p): p for p in glob.glob(osp.join(glob.escape(work_dir), '*.pth'))}
    if last is not None:
        paths.setdefault(osp.abspath(last), last)
    return sorted(paths.values(), key=_order_key, reverse=True), last


def find_resume_checkpoint(work_dir: str) -> Tuple[Optional[str], List[str]]:
    """The newest readable checkpoint of ``work_dir`` and the reasons for every one passed over.

    Returns ``(path or None, skipped)`` where ``skipped`` holds one message per unreadable candidate.
    """
    candidates, last = _candidates(work_dir)
    skipped = []
    for path in candidates:
        try:
            check_checkpoint_readable(path)
        except CheckpointUnreadable as e:
            reason = str(e)
            if path == last:
                reason = f'{osp.join(work_dir, "last_checkpoint")} names {path!r}, which is unusable: {e}'
            skipped.append(reason)
            continue
        return path, skipped
    return None, skipped
