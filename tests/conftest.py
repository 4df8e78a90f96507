"""Shared pytest fixtures: the tiny CLIP config, a toy dataset, the project root."""
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


@pytest.fixture(scope='session')
def project_root() -> str:
    return ROOT


@pytest.fixture(scope='session')
def tiny_clip_cfg() -> dict:
    """The tiny open_clip model config of configs/_base_/clip/tiny_vit.py."""
    from mmengine.config import Config
    return Config.fromfile(osp.join(ROOT, 'configs/_base_/clip/tiny_vit.py')).tiny_clip_cfg.to_dict()


@pytest.fixture(scope='session')
def toy_data_root(tmp_path_factory) -> str:
    """A small toy dataset written by data_prep/make_toy_dataset.py (the real script)."""
    out = str(tmp_path_factory.mktemp('toy'))
    subprocess.run([sys.executable, osp.join(ROOT, 'data_prep/make_toy_dataset.py'), '--out', out,
                    '--num-train', '12', '--num-val', '8', '--size', '64', '--seed', '0'],
                   check=True, capture_output=True)
    return out
