"""data_prep writers under SIGKILL: one test per writer family (those not covered by
tests/test_data_scale.py). Each writer is run once uninterrupted, and once SIGKILLed (main process only,
as the OOM killer would) after some outputs exist, then re-run: no process of the killed run may be left,
and the resumed output tree must equal the uninterrupted one byte for byte (no truncated or half-written
file; temporary files of the killed write are not outputs)."""
import functools
import hashlib
import http.server
import io
import json
import os
import os.path as osp
import sys
import tarfile
import threading
import time

import numpy as np
import pytest
from PIL import Image

from tests._kill_utils import kill_when, start, wait_session_empty
from tests.utils import run_tool

PY = sys.executable


def _tree(root: str) -> dict:
    """{relative path: sha256} of every output file (temporary files excluded)."""
    out = {}
    for d, _, files in os.walk(root):
        for n in files:
            if '.tmp' in n:
                continue
            p = osp.join(d, n)
            out[osp.relpath(p, root)] = hashlib.sha256(open(p, 'rb').read()).hexdigest()
    return out


def _count(root: str, suffix: str) -> int:
    return sum(n.endswith(suffix) and '.tmp' not in n for _, _, files in os.walk(root) for n in files)


def _kill_resume_compare(tmp_path, cmd, suffix: str, kill_after: int, env=None):
    ref, out = str(tmp_path / 'ref'), str(tmp_path / 'out')
    run_tool(cmd(ref), env=env)
    total = _count(ref, suffix)
    assert total > kill_after
    log = str(tmp_path / 'killed.log')
    proc = start(cmd(out), log, env=env)
    kill_when(proc, lambda: _count(out, suffix) >= kill_after, poll=0.005, log_path=log)
    wait_session_empty(proc.pid, timeout=5)  # no orphaned worker
    done_at_kill = _count(out, suffix)
    assert done_at_kill < total, 'the writer finished before it was killed'
    run_tool(cmd(out), env=env)
    got, want = _tree(out), _tree(ref)
    assert sorted(got) == sorted(want)
    assert [k for k in want if got[k] != want[k]] == []
    return done_at_kill, total


def test_make_toy_dataset_resumes_after_kill(tmp_path):
    cmd = lambda out: [PY, 'data_prep/make_toy_dataset.py', '--out', out, '--num-train', '300',  # noqa: E731
                       '--num-val', '20', '--size', '64', '--seed', '3']
    _kill_resume_compare(tmp_path, cmd, '.png', kill_after=30)


def _sa1b_tars(root: str, shards=2, per_shard=40, size=(96, 128)):
    from pycocotools import mask as mask_utils
    rng = np.random.default_rng(0)
    os.makedirs(root)
    for s in range(shards):
        with tarfile.open(osp.join(root, f'sa_{s:06d}.tar'), 'w') as tar:
            for i in range(per_shard):
                name = f'sa_{s * 1000 + i}'
                buf = io.BytesIO()
                Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(buf, format='JPEG')
                masks = np.zeros((*size, 8), np.uint8)
                for k in range(8):
                    masks[rng.integers(0, size[0] // 2):, rng.integers(0, size[1] // 2):, k] = 1
                rles = mask_utils.encode(np.asfortranarray(masks))
                ann = dict(image=dict(image_id=i, height=size[0], width=size[1], file_name=name + '.jpg'),
                           annotations=[dict(segmentation=dict(size=list(r['size']), counts=r['counts'].decode()))
                                        for r in rles])
                for member, data in ((name + '.jpg', buf.getvalue()), (name + '.json', json.dumps(ann).encode())):
                    info = tarfile.TarInfo(member)
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


def test_sa1b_subset_resumes_after_kill(tmp_path):
    tars = str(tmp_path / 'tars')
    _sa1b_tars(tars)
    cmd = lambda out: [PY, 'data_prep/sa1b_subset.py', tars, out, '--shards', 'sa_000000', 'sa_000001']  # noqa: E731
    _kill_resume_compare(tmp_path, cmd, '.json', kill_after=5)


def test_mask_writers_resume_after_kill(tmp_path):
    """dino_masks.py (offline DINO k-means; sam_masks.py writes through the same masks_for_folder)."""
    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(16):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(imgs / f'{i:03d}.png')
    script = ('import sys, torch; sys.path.insert(0, "data_prep"); import dino_masks as d; torch.manual_seed(0); '
              'torch.set_num_threads(1); m = d.build_dino(None, arch="vit_tiny_patch16_224"); d.run(sys.argv[1], sys.argv[2], m, 4)')
    cmd = lambda out: [PY, '-c', script, str(imgs), out]  # noqa: E731
    _kill_resume_compare(tmp_path, cmd, '.json', kill_after=3)


class _SlowHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        time.sleep(0.02)
        super().do_GET()

    def log_message(self, *args, **kwargs):
        pass


@pytest.fixture
def slow_image_server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(60):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(root / f'{i}.png')
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0),
                                             functools.partial(_SlowHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_cc3m_shards_resume_after_kill(tmp_path, slow_image_server):
    tsv = tmp_path / 'train.tsv'
    tsv.write_text(''.join(f'caption number {i}\t{slow_image_server}/{i}.png\n' for i in range(60)))
    cmd = lambda out: [PY, 'data_prep/cc3m_shards.py', str(tsv), out, '--shard-size', '16',  # noqa: E731
                       '--workers', '2', '--timeout', '5']
    _kill_resume_compare(tmp_path, cmd, '.jpg', kill_after=8)


def test_benchmark_converter_resumes_after_kill(tmp_path):
    """prepare_benchmarks.py cityscapes (labelIds -> labelTrainIds through bench_io's atomic writes)."""
    rng = np.random.default_rng(0)
    src = tmp_path / 'src'
    for i in range(80):
        city = 'frankfurt' if i % 2 else 'lindau'
        stem = f'{city}_000000_{i:06d}'
        for sub, suffix, arr in (('leftImg8bit', '_leftImg8bit.png', rng.integers(0, 255, (32, 64, 3), dtype=np.uint8)),
                                 ('gtFine', '_gtFine_labelIds.png', rng.integers(0, 34, (256, 512), dtype=np.uint8))):
            d = src / sub / 'val' / city
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(arr).save(d / (stem + suffix))

    def cmd(out):
        if not osp.isdir(out):
            import shutil
            shutil.copytree(src, out)
        return [PY, 'data_prep/prepare_benchmarks.py', 'cityscapes', out]

    _kill_resume_compare(tmp_path, cmd, '_labelTrainIds.png', kill_after=10)
