"""data_prep/cc3m_shards.py against a loopback HTTP server, then CC3MCaptionDataset on its output."""
import functools
import http.server
import os
import threading

import numpy as np
import pytest
from PIL import Image

from data_prep.cc3m_shards import build_shards, read_tsv


@pytest.fixture
def image_server(tmp_path):
    root = tmp_path / 'www'
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(root / f'{i}.png')
    (root / 'corrupt.jpg').write_bytes(b'\xff\xd8 not really a jpeg')
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f'http://127.0.0.1:{server.server_address[1]}'
    server.shutdown()


def test_cc3m_shards_download_resume_and_dataset(tmp_path, image_server):
    from mmseg_ovs.datasets import CC3MCaptionDataset

    tsv = tmp_path / 'train.tsv'
    tsv.write_text(f'a red car on a road\t{image_server}/0.png\n'
                   f'two dogs playing\t{image_server}/1.png\n'
                   f'missing picture\t{image_server}/404.png\n'
                   f'broken picture\t{image_server}/corrupt.jpg\n'
                   f'a cat on a sofa\t{image_server}/2.png\n')
    out = str(tmp_path / 'cc3m')
    written, done, failures = build_shards(str(tsv), out, shard_size=2, workers=2, timeout=5)
    assert (written, done, len(failures)) == (3, 0, 2)
    assert sorted(os.listdir(out)) == ['00000', '00002', 'failures.tsv']  # rows 2-3 both failed
    assert sorted(os.listdir(os.path.join(out, '00002'))) == ['000000004.jpg', '000000004.txt']
    assert open(os.path.join(out, '00000', '000000001.txt')).read() == 'two dogs playing'
    # resumable: the successful rows are skipped, the failed ones retried (and fail again)
    written, done, failures = build_shards(str(tsv), out, shard_size=2, workers=2, timeout=5)
    assert (written, done, len(failures)) == (0, 3, 2)
    dataset = CC3MCaptionDataset(data_root=out, pipeline=[])
    infos = [dataset.get_data_info(i) for i in range(len(dataset))]
    assert sorted(d['caption'] for d in infos) == ['a cat on a sofa', 'a red car on a road', 'two dogs playing']
    assert infos[0]['superpixel_key'] == '00000/000000000.jpg'
    assert Image.open(infos[0]['img_path']).size == (60, 40)


def test_cc3m_tsv_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.tsv'):
        read_tsv(str(tmp_path / 'nope.tsv'))
    bad = tmp_path / 'bad.tsv'
    bad.write_text('only a caption without url\n')
    with pytest.raises(ValueError, match='bad.tsv:1'):
        read_tsv(str(bad))
