"""Parity-fixture discovery shared by the parity tests
(``from tests.parity.fixture_utils import fixture_params, load_fixture, expected``).

Fixtures are read in place (never copied into the repo) from, in order:

* ``$MMSEG_OVS_FIXTURES/<method>/`` (default ``<project root>/../shared/fixtures/<method>/``);
* every folder of ``$MMSEG_OVS_EXTRA_FIXTURES`` (``os.pathsep``-separated) under ``<method>/``
  (other seeds and sizes).

Files are recognised by their **content** (the documented format: which inputs/outputs a file
holds), not by their names, so a fixture may be called anything and two folders may hold files
of the same name. ``fixture_params(method, kind)`` returns pytest params, one per file of that
kind, with ids naming the folder and the file. With no fixture folder the tests skip with a
clear message, unless ``MMSEG_OVS_REQUIRE_FIXTURES=1`` (set by ``.ci/run``), which turns the skip
into a failure.

An output that a fixture does not store (e.g. per-crop dense logits) skips only its own comparison:
:func:`expected` returns None and the ``check`` helpers of the tests skip None with a message.
"""
import os
import os.path as osp
from functools import lru_cache
from typing import Callable, Dict, List, Optional

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _inp(fx) -> dict:
    return fx.get('inputs', {}) if isinstance(fx.get('inputs'), dict) else {}


def _out(fx) -> dict:
    return fx.get('outputs', {}) if isinstance(fx.get('outputs'), dict) else {}


def _sinkhorn_cases(fx) -> bool:
    cases = _inp(fx)
    return bool(cases) and all(isinstance(c, dict) and 'logits' in c and 'n_iters' in c
                               for c in cases.values())


#: kind -> content signature (README "inputs"/"outputs" of each fixture type).
SIGNATURES: Dict[str, Dict[str, Callable[[dict], bool]]] = {
    'segclip': {
        'group_module': lambda fx: 'x' in _inp(fx) and 'state_dict' in fx,
        'image_encoder': lambda fx: 'image' in _inp(fx) and 'image_feature' in _out(fx),
        'text_encoder': lambda fx: 'texts' in _inp(fx),
        'superpixel_kl': lambda fx: 'superpixel_map' in _inp(fx),
        'reconstruction': lambda fx: 'mask_noise' in _inp(fx) and 'image' in _inp(fx)
        and 'captions' not in _inp(fx),
        'training_step': lambda fx: 'captions' in _inp(fx),
        'slide_inference': lambda fx: 'crop_boxes_y1x1y2x2' in _out(fx) or
        ('img' in _inp(fx) and 'class_names' in _inp(fx)),
    },
    'pixelclip': {
        'sinkhorn': _sinkhorn_cases,
        'prepare_clusters': lambda fx: 'masks' in _inp(fx) and 'teacher_feat' in _inp(fx),
        'head_and_loss': lambda fx: 'student_feat' in _inp(fx) and 'targets' in _inp(fx),
        'ema_step': lambda fx: 'alpha' in _inp(fx) or 'teacher_after' in _out(fx),
        'dense_vit': lambda fx: 'cases' in fx and 'image_normalized' in _inp(fx),
        'prompt_embeddings': lambda fx: 'probe' in _inp(fx) or 'prompt_word_ids' in _out(fx),
        'inference': lambda fx: 'image_uint8_hwc' in _inp(fx) and 'class_names' in _inp(fx),
        'train_step': lambda fx: 'gt_masks' in _inp(fx),
    },
}


def fixture_dirs(method: str) -> List[str]:
    base = os.environ.get('MMSEG_OVS_FIXTURES', osp.join(ROOT, '..', 'shared', 'fixtures'))
    dirs = [osp.join(base, method)]
    extra = os.environ.get('MMSEG_OVS_EXTRA_FIXTURES')
    if extra:
        dirs += [osp.join(e, method) for e in extra.split(os.pathsep) if e]
    return [osp.normpath(d) for d in dirs]


def classify(method: str, fx: dict) -> Optional[str]:
    """The fixture kind of a loaded fixture (None when it matches no documented format)."""
    if not isinstance(fx, dict):
        return None
    kinds = [k for k, sig in SIGNATURES[method].items() if sig(fx)]
    return kinds[0] if len(kinds) == 1 else None


@lru_cache(maxsize=None)
def _index(method: str, dirs: tuple) -> tuple:
    """((dir, file, kind), ...) for every ``*.pt`` in ``dirs`` (loaded once to classify)."""
    rows = []
    for d in dirs:
        if not osp.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = osp.join(d, name)
            if not name.endswith('.pt') or not osp.isfile(path):
                continue
            try:
                kind = classify(method, torch.load(path, map_location='cpu', weights_only=True))
            except Exception as e:  # noqa: BLE001  an unreadable file is reported, not fatal
                kind = f'unreadable: {e}'
            rows.append((d, name, kind))
    return tuple(rows)


def fixtures_by_dir(method: str, kinds) -> List[Dict[str, str]]:
    """Per fixture folder, the path of one file of each of ``kinds`` (folders lacking one are left
    out): for tests that combine fixtures generated from the same model."""
    dirs = fixture_dirs(method)
    out = []
    for d in dirs:
        found = {}
        for dd, name, kind in _index(method, tuple(dirs)):
            if dd == d and kind in kinds and kind not in found:
                found[kind] = osp.join(dd, name)
        if len(found) == len(kinds):
            out.append(found)
    return out


def fixture_params(method: str, kind: str):
    """pytest params for every fixture file of ``method`` whose content is of ``kind``."""
    if kind not in SIGNATURES[method]:
        raise KeyError(f'unknown {method} fixture kind {kind!r}; known: {sorted(SIGNATURES[method])}')
    dirs = fixture_dirs(method)
    if not any(osp.isdir(d) for d in dirs):
        msg = (f'no {method} parity fixtures: looked in {dirs} '
               f'(set MMSEG_OVS_FIXTURES to the folder holding segclip/ and pixelclip/)')
        if os.environ.get('MMSEG_OVS_REQUIRE_FIXTURES') == '1':
            # CI: the test runs and load_fixture() fails with the message.
            return [pytest.param(msg, id=f'MISSING-{method}-fixtures')]
        return [pytest.param(None, id=f'no-{method}-fixtures', marks=pytest.mark.skip(reason=msg))]
    params = []
    for i, (d, name, k) in enumerate(_index(method, tuple(dirs))):
        if k == kind:
            tag = method if d == dirs[0] else f'extra{dirs.index(d)}'
            params.append(pytest.param(osp.join(d, name), id=f'{tag}/{name}'))
    if not params:
        params.append(pytest.param(None, id=f'no-{kind}', marks=pytest.mark.skip(
            reason=f'no {method} fixture of kind {kind!r} in {dirs}')))
    return params


def load_fixture(path: str) -> dict:
    """Load a fixture file (weights_only); a missing-fixture param fails the test with its message."""
    if path is None or not osp.isfile(str(path)):
        pytest.fail(f'parity fixture unavailable: {path}')
    return torch.load(path, map_location='cpu', weights_only=True)


def expected(d: Optional[dict], key: str):
    """``d[key]``, or None (printed) when the fixture does not store that optional output."""
    if d is None or key not in d:
        print(f'  {key}: not stored in this fixture, comparison skipped')
        return None
    return d[key]
