"""The parity tests accept any fixture in the documented format: variants built here at run time
(an optional output deleted, file names that say nothing or repeat another folder's) are found by
content and pass, with only the absent comparisons skipped."""
import os
import os.path as osp

import pytest
import torch

from tests.parity import fixture_utils
from tests.parity.fixture_utils import fixture_dirs, fixture_params, fixtures_by_dir


def _source(method: str, kind: str) -> str:
    params = [p.values[0] for p in fixture_params(method, kind)]
    params = [p for p in params if p and osp.isfile(p)]
    if not params:
        if os.environ.get('MMSEG_OVS_REQUIRE_FIXTURES') == '1':
            pytest.fail(f'no {method} {kind} fixture')
        pytest.skip(f'no {method} {kind} fixture')
    return params[0]


@pytest.fixture
def variant_dirs(tmp_path, monkeypatch):
    """Two extra fixture roots, a/ and b/, used through $MMSEG_OVS_EXTRA_FIXTURES."""
    roots = [tmp_path / 'a', tmp_path / 'b']
    for r in roots:
        (r / 'segclip').mkdir(parents=True)
        (r / 'pixelclip').mkdir(parents=True)

    def activate():
        monkeypatch.setenv('MMSEG_OVS_EXTRA_FIXTURES', os.pathsep.join(map(str, roots)))
    return roots, activate


def test_segclip_slide_variant_without_crop_logits(variant_dirs, capsys):
    from tests.parity.test_segclip_parity import test_slide_inference
    src = _source('segclip', 'slide_inference')
    (a, b), activate = variant_dirs
    fx = torch.load(src, weights_only=True)
    for crop in fx['outputs']['crops']:
        crop.pop('logits', None)  # the optional per-crop dense logits
    fx['outputs'].pop('count_map', None)
    # a name that says nothing, and in the other folder the same name as a sibling fixture's
    torch.save(fx, a / 'segclip' / 'case_seed7.pt')
    torch.save(fx, b / 'segclip' / 'slide_inference.pt')
    fx2 = torch.load(src, weights_only=True)
    torch.save(fx2, a / 'segclip' / 'slide_inference.pt')
    activate()
    found = [p.values[0] for p in fixture_params('segclip', 'slide_inference')]
    ids = [p.id for p in fixture_params('segclip', 'slide_inference')]
    assert str(a / 'segclip' / 'case_seed7.pt') in found and str(b / 'segclip' / 'slide_inference.pt') in found
    assert len(set(ids)) == len(ids), ids  # colliding file names get distinct test ids
    test_slide_inference(str(a / 'segclip' / 'case_seed7.pt'))
    out = capsys.readouterr().out
    assert 'logits: not stored in this fixture' in out and 'main.crop0.logits' not in out
    assert 'main.label_map: mismatches=0' in out


def test_pixelclip_inference_variant_without_optional_outputs(variant_dirs, capsys):
    from tests.parity.test_pixelclip_parity import test_inference
    src = _source('pixelclip', 'inference')
    (a, b), activate = variant_dirs
    fx = torch.load(src, weights_only=True)
    for key in ('logits_full_rows', 'logits_full_row_stride', 'label_map_ambiguous', 'dense_bhwc',
                'classifier_fp16path_cpu'):
        fx['outputs'].pop(key)
    torch.save(fx, b / 'pixelclip' / 'inference.pt')  # same name as the shared fixture
    activate()
    ids = [p.id for p in fixture_params('pixelclip', 'inference')]
    assert len(ids) == len(set(ids)) >= 2, ids
    test_inference(str(b / 'pixelclip' / 'inference.pt'))
    out = capsys.readouterr().out
    assert 'dense_bhwc: skipped' in out and 'label_map (outside near-ties): mismatches=0' in out


def test_unknown_files_and_per_folder_grouping(variant_dirs):
    (a, b), activate = variant_dirs
    torch.save({'meta': {}, 'note': 'not a fixture'}, a / 'segclip' / 'notes.pt')
    activate()
    kinds = {k for _, _, k in fixture_utils._index('segclip', tuple(fixture_dirs('segclip')))}
    assert None in kinds  # recognised as no known kind, not assigned to one
    for kind in fixture_utils.SIGNATURES['segclip']:
        assert all(p.values[0] != str(a / 'segclip' / 'notes.pt') for p in fixture_params('segclip', kind))
    # a folder holding only some kinds is not combined with another folder's files
    assert all(osp.dirname(p) == osp.dirname(next(iter(g.values())))
               for g in fixtures_by_dir('segclip', ('training_step', 'text_encoder', 'image_encoder'))
               for p in g.values())
