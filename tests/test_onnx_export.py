"""ONNX export of each segmentor's image graph (class embeddings baked in) checked with onnxruntime
against PyTorch on tiny random models: logits within 1e-4, identical label maps, at two image
sizes and two batch sizes (dynamic axes); the exported vocabulary is fixed."""
import numpy as np
import pytest
import torch

from tests.test_ovs_inference import build

pytest.importorskip('onnxruntime')


@pytest.mark.parametrize('method', ['segclip', 'pixelclip', 'clip_baseline'])
def test_onnx_matches_pytorch(method, tmp_path):
    import onnxruntime as ort
    from mmseg_ovs.apis.onnx_export import _takes_raw_pixels, export_onnx
    model = build(method)
    model.set_vocabulary(['circle', ['square', 'box'], 'star'])
    out = str(tmp_path / f'{method}.onnx')
    info = export_onnx(model, out, image_size=(48, 64), batch_size=2, optimize=False)
    assert info['num_classes'] == 3 and all(isinstance(d, str) for d in (info['input_shape'][0],
                                                                         *info['input_shape'][2:]))
    sess = ort.InferenceSession(out, providers=['CPUExecutionProvider'])
    assert [i.name for i in sess.get_inputs()] == ['image']  # no text input: embeddings are constant
    g = torch.Generator().manual_seed(1)
    for b, (h, w) in ((1, (48, 64)), (3, (72, 40))):
        x = torch.rand(b, 3, h, w, generator=g)
        x = x * 255. if _takes_raw_pixels(model) else (x - 0.5) * 4
        with torch.no_grad():
            ref = model.predict(x)
        got = sess.run(['logits'], {'image': x.numpy()})[0]
        ref_logits = torch.stack([d.seg_logits.data for d in ref]).numpy()
        diff = float(np.abs(got - ref_logits).max())
        print(f'{method} {b}x{h}x{w}: max_abs={diff:.2e}')
        assert got.shape == (b, 3, h, w) and diff <= 1e-4
        assert np.array_equal(got.argmax(1), np.stack([d.pred_sem_seg.data[0].numpy() for d in ref]))
    # a new vocabulary changes PyTorch, not the exported graph
    model.set_vocabulary(['cat', 'dog'])
    assert sess.run(['logits'], {'image': x.numpy()})[0].shape[1] == 3
