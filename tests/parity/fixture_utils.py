"""Parity-fixture discovery shared by the parity tests
(``from tests.parity.fixture_utils import fixture_params, load_fixture``).

Fixtures are read in place (never copied into the repo) from, in order:

* ``$MMSEG_OVS_FIXTURES/<method>/`` (default ``<project root>/../shared/fixtures/<method>/``);
* ``$MMSEG_OVS_EXTRA_FIXTURES/<method>/`` when that variable is set (other seeds and sizes).

``fixture_params(method, name)`` returns pytest params, one per matching file, with ids naming the
file. With no fixture folder the tests skip with a clear message, unless
``MMSEG_OVS_REQUIRE_FIXTURES=1`` (set by ``.ci/run``), which turns the skip into a failure.
"""
import fnmatch
import os
import os.path as osp
from typing import List

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def fixture_dirs(method: str) -> List[str]:
    base = os.environ.get('MMSEG_OVS_FIXTURES', osp.join(ROOT, '..', 'shared', 'fixtures'))
    dirs = [osp.join(base, method)]
    extra = os.environ.get('MMSEG_OVS_EXTRA_FIXTURES')
    if extra:
        dirs.append(osp.join(extra, method))
    return [osp.normpath(d) for d in dirs]


def fixture_params(method: str, pattern: str = '*.pt'):
    """pytest params for every fixture file of ``method`` whose base name matches ``pattern``.

    ``pattern`` is a glob such as ``'group_module*.pt'``; extra-fixture files with other seeds or
    sizes (``group_module_eval_seed3.pt``) match the same glob.
    """
    params = []
    found_dir = False
    for d in fixture_dirs(method):
        if not osp.isdir(d):
            continue
        found_dir = True
        for name in sorted(os.listdir(d)):
            if fnmatch.fnmatch(name, pattern):
                tag = 'extra' if d != fixture_dirs(method)[0] else method
                params.append(pytest.param(osp.join(d, name), id=f'{tag}/{name}'))
    if not found_dir:
        msg = (f'no {method} parity fixtures: looked in {fixture_dirs(method)} '
               f'(set MMSEG_OVS_FIXTURES to the folder holding segclip/ and pixelclip/)')
        if os.environ.get('MMSEG_OVS_REQUIRE_FIXTURES') == '1':
            # CI: the test runs and load_fixture() fails with the message.
            return [pytest.param(msg, id=f'MISSING-{method}-fixtures')]
        return [pytest.param(None, id=f'no-{method}-fixtures', marks=pytest.mark.skip(reason=msg))]
    return params


def load_fixture(path: str) -> dict:
    """Load a fixture file (weights_only); a missing-fixture param fails the test with its message."""
    if path is None or not osp.isfile(str(path)):
        pytest.fail(f'parity fixture unavailable: {path}')
    return torch.load(path, map_location='cpu', weights_only=True)
