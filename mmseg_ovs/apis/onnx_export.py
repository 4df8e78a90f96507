"""ONNX export of an open-vocabulary segmentor's image graph (class embeddings baked in)."""
import os
import os.path as osp
from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ['OVSImageGraph', 'export_onnx', 'onnx_logits']


class OVSImageGraph(nn.Module):
    """The image graph of a :class:`BaseOVSSegmentor` for export: images -> class logits.

    ``forward(img)``: (B, 3, H, W) images as the segmentor's data preprocessor hands them over
    (CLIP-normalised RGB for SegCLIP / the CLIP baseline, 0-255 in the model's channel order for
    PixelCLIP) -> (B, num_classes, H, W) logits (background channel first when predicted), resized
    once to the input size; ``argmax(1)`` is the label map. The vocabulary's class embeddings are
    computed once here and enter the graph as a constant (the text tower is not exported).
    """

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor.eval()
        with torch.no_grad():
            self.segmentor.class_embeddings()  # fill the text encoder's cache (a buffer)

    def forward(self, img: Tensor) -> Tensor:
        logits = self.segmentor.inference(img, [{}] * img.shape[0])
        return F.interpolate(logits, size=img.shape[-2:], mode='bilinear',
                             align_corners=self.segmentor.align_corners)


def export_onnx(segmentor: nn.Module, out: str, image_size: Tuple[int, int] = (224, 224),
                batch_size: int = 1, dynamic: bool = True, opset: int = 18,
                optimize: bool = True) -> dict:
    """Export ``segmentor``'s image graph to ``out`` (written atomically) with torch's dynamo ONNX
    exporter (``torch.export`` + onnxscript).

    Batch and image size are dynamic, except in slide mode (the crop grid depends on the image
    size: only the batch is dynamic there). Returns a summary dict (``input_shape``: symbolic names
    for the dynamic dimensions).
    """
    graph = OVSImageGraph(segmentor)
    slide = segmentor.test_cfg.get('mode', 'whole') == 'slide'
    example = torch.rand(batch_size, 3, *image_size) * (255. if _takes_raw_pixels(segmentor) else 1.)
    os.makedirs(osp.dirname(osp.abspath(out)) or '.', exist_ok=True)
    tmp = out + '.tmp'
    dynamic_shapes = None
    if dynamic:
        auto = torch.export.Dim.AUTO
        dynamic_shapes = ({0: auto} if slide else {0: auto, 2: auto, 3: auto},)
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # the fused inference kernel is not exportable
    try:
        with torch.no_grad():
            program = torch.onnx.export(graph, (example,), None, input_names=['image'],
                                        output_names=['logits'], dynamic_shapes=dynamic_shapes,
                                        opset_version=opset, dynamo=True, verbose=False,
                                        optimize=optimize)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    program.save(tmp)
    os.replace(tmp, out)
    import onnx
    dims = [d.dim_param or d.dim_value for d in
            onnx.load(out, load_external_data=False).graph.input[0].type.tensor_type.shape.dim]
    return dict(path=out, num_classes=segmentor.num_classes, class_names=list(segmentor.class_names),
                input_shape=dims, mode=segmentor.test_cfg.get('mode', 'whole'))


def _takes_raw_pixels(segmentor: nn.Module) -> bool:
    """PixelCLIP normalises 0-255 images itself (``clip_mean``); the others take normalised ones."""
    return hasattr(segmentor, 'clip_mean')


def onnx_logits(path: str, images: Sequence) -> list:
    """Run an exported graph with onnxruntime (CPU) on (B, 3, H, W) float arrays."""
    import numpy as np
    import onnxruntime as ort
    sess = ort.InferenceSession(path, providers=['CPUExecutionProvider'])
    return [sess.run(['logits'], {'image': np.ascontiguousarray(x, dtype=np.float32)})[0] for x in images]
