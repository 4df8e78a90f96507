"""BaseOVSSegmentor: vocabulary and inference shared by every open-vocabulary segmentor."""
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.config import ConfigDict
from mmengine.structures import PixelData
from mmseg.models.segmentors import BaseSegmentor
from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType, OptSampleList, SampleList
from torch import Tensor

from mmseg_ovs.datasets.class_names import Vocabulary, parse_vocabulary

__all__ = ['BaseOVSSegmentor']

INFERENCE_MODES = ('whole', 'slide', 'squash')


class BaseOVSSegmentor(BaseSegmentor):
    """Base of the open-vocabulary segmentors (SegCLIP, PixelCLIP, the dense-CLIP baseline).

    The vocabulary lives in ``self.text_encoder`` (:class:`OpenCLIPTextEncoder`): every form that
    :func:`parse_vocabulary` accepts, synonyms averaged, class embeddings cached in a buffer. A
    subclass builds ``self.text_encoder`` and implements only :meth:`encode_decode`, the per-crop
    logits ``(B, num_classes, h, w)`` at whatever resolution the method produces (a thresholded
    background is channel 0 when the vocabulary starts with ``'background'``).

    This class owns inference:

    * ``test_cfg.mode``: ``'whole'`` (the image as it is), ``'squash'`` (resized to
      ``test_cfg.squash_size`` without keeping the aspect ratio, PixelCLIP) or ``'slide'`` (mmseg's
      crop grid of ``crop_size``/``stride``, the last crop shifted inside the image; crops batched
      ``slide_batch`` at a time, default 16; per-crop logits resized to the crop, overlaps averaged);
    * padded batches of images of different sizes: each image is inferred on its own area
      (``img_shape``/``padding_size``), so a batch gives exactly the batch-size-1 result;
    * :meth:`postprocess_result`: flip back, one bilinear resize from the logit resolution to
      ``ori_shape``, argmax (any number of classes, one included).
    """

    def __init__(self, test_cfg: OptConfigType = None, data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.test_cfg = ConfigDict(test_cfg if test_cfg is not None else dict(mode='whole'))
        self.align_corners = False

    # ------------------------------------------------------------------ vocabulary
    def check_vocabulary(self, vocabulary: List[List[str]]) -> None:
        """Method-specific checks of a parsed vocabulary (raise ValueError)."""

    def set_vocabulary(self, vocabulary: Vocabulary, templates: Union[str, Sequence[str], None] = None,
                       variant: Optional[str] = None) -> None:
        """Set the test classes: a benchmark key (``'voc21'``), a ``cls_*.txt`` path, or a list of names
        (an entry may be a list of synonyms or an ``'a|b'`` string); ``templates`` optionally."""
        classes = parse_vocabulary(vocabulary, variant)
        self.check_vocabulary(classes)
        self.text_encoder.set_vocabulary(classes, templates=templates)

    @property
    def vocabulary(self) -> Optional[List[List[str]]]:
        return self.text_encoder.vocabulary

    @property
    def class_names(self) -> Optional[List[str]]:
        """One name per output channel (first synonym), background included."""
        return self.text_encoder.class_names

    @property
    def has_background(self) -> bool:
        return self.text_encoder.has_background

    @property
    def num_classes(self) -> int:
        if self.vocabulary is None:
            raise RuntimeError(f'{type(self).__name__}: no vocabulary: set class_names= or call '
                               'set_vocabulary()')
        return len(self.vocabulary)

    @property
    def out_channels(self) -> int:
        return self.num_classes

    def class_embeddings(self) -> Tensor:
        """(num_prompted_classes, E) L2-normalised class embeddings (cached by the text encoder)."""
        self.num_classes  # noqa: B018  (clear error without a vocabulary)
        return self.text_encoder()

    # ------------------------------------------------------------------ per-method parts
    def normalize_inputs(self, inputs: Tensor) -> Tensor:
        """Hook applied before squash/slide (PixelCLIP normalises 0-255 images here)."""
        return inputs

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Per-crop logits (B, num_classes, h, w) of normalised crops (B, 3, H, W)."""
        raise NotImplementedError

    def extract_feat(self, inputs: Tensor):
        raise NotImplementedError

    def loss(self, inputs: Tensor, data_samples: SampleList) -> dict:
        raise NotImplementedError(f'{type(self).__name__} is training-free; it has no loss')

    # ------------------------------------------------------------------ inference
    def whole_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits of the whole (or squashed) image at the method's resolution."""
        if self.test_cfg.get('mode', 'whole') == 'squash' or self.test_cfg.get('squash_size'):
            size = self.test_cfg.get('squash_size')
            if size is None:
                raise ValueError("test_cfg.mode='squash' needs test_cfg.squash_size=(h, w)")
            inputs = F.interpolate(inputs, size=tuple(size), mode='bilinear', align_corners=False)
        return self.encode_decode(inputs, batch_img_metas)

    def slide_inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """mmseg's crop grid; crops of all images batched ``slide_batch`` at a time; (B, C, H, W)."""
        h_stride, w_stride = self.test_cfg['stride']
        h_crop, w_crop = self.test_cfg['crop_size']
        chunk = max(1, int(self.test_cfg.get('slide_batch', 16)) // inputs.shape[0])
        b, _, h_img, w_img = inputs.shape
        h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
        w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
        boxes = []
        for hi in range(h_grids):
            for wi in range(w_grids):
                y2, x2 = min(hi * h_stride + h_crop, h_img), min(wi * w_stride + w_crop, w_img)
                boxes.append((max(y2 - h_crop, 0), max(x2 - w_crop, 0), y2, x2))
        preds = count = None
        for start in range(0, len(boxes), chunk):
            group = boxes[start:start + chunk]
            crops = torch.cat([inputs[:, :, y1:y2, x1:x2] for y1, x1, y2, x2 in group])
            out = self.encode_decode(crops, batch_img_metas * len(group))
            if tuple(out.shape[-2:]) != tuple(crops.shape[-2:]):
                out = F.interpolate(out, size=crops.shape[-2:], mode='bilinear',
                                    align_corners=self.align_corners)
            out = out.view(len(group), b, *out.shape[1:])
            if preds is None:
                preds = inputs.new_zeros((b, out.shape[2], h_img, w_img), dtype=out.dtype)
                count = inputs.new_zeros((1, 1, h_img, w_img), dtype=out.dtype)
            for k, (y1, x1, y2, x2) in enumerate(group):
                preds[:, :, y1:y2, x1:x2] += out[k]
                count[:, :, y1:y2, x1:x2] += 1
        return preds / count

    def inference(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Logits (B, C, h, w) of same-size, unpadded images, at the method's resolution."""
        mode = self.test_cfg.get('mode', 'whole')
        if mode not in INFERENCE_MODES:
            raise ValueError(f'test_cfg.mode must be one of {INFERENCE_MODES}, got {mode!r}')
        inputs = self.normalize_inputs(inputs)
        if mode == 'slide':
            return self.slide_inference(inputs, batch_img_metas)
        return self.whole_inference(inputs, batch_img_metas)

    @staticmethod
    def valid_area(meta: dict, shape) -> tuple:
        """(top, bottom, left, right) of an image inside its padded batch input."""
        H, W = shape
        if 'padding_size' in meta:
            left, right, top, bottom = meta['padding_size']
            return top, H - bottom, left, W - right
        h, w = meta.get('img_shape', (H, W))[:2]
        return 0, min(h, H), 0, min(w, W)

    def predict(self, inputs: Tensor, data_samples: OptSampleList = None) -> SampleList:
        """Label maps; images of a padded batch are inferred each on its own area."""
        if data_samples is None:
            shape = tuple(inputs.shape[-2:])
            data_samples = [SegDataSample(metainfo=dict(ori_shape=shape, img_shape=shape))
                            for _ in range(inputs.shape[0])]
        metas = [ds.metainfo for ds in data_samples]
        areas = [self.valid_area(m, inputs.shape[-2:]) for m in metas]
        full = (0, inputs.shape[-2], 0, inputs.shape[-1])
        with torch.no_grad():
            if all(a == full for a in areas):
                seg_logits = list(self.inference(inputs, metas))
            else:
                seg_logits = [self.inference(inputs[i:i + 1, :, t:b, l:r], [metas[i]])[0]
                              for i, (t, b, l, r) in enumerate(areas)]
        return self.postprocess_result(seg_logits, data_samples)

    def postprocess_result(self, seg_logits: Union[Tensor, List[Tensor]],
                           data_samples: OptSampleList = None) -> SampleList:
        """Per image (C, h, w) logits (of its valid area) -> flipped back, resized once to
        ``ori_shape`` (bilinear), argmax. Works for any C >= 1."""
        if data_samples is None:
            data_samples = [SegDataSample() for _ in range(len(seg_logits))]
        for logits, ds in zip(seg_logits, data_samples):
            meta = ds.metainfo
            if meta.get('flip', False):
                direction = meta.get('flip_direction', 'horizontal')
                if direction not in ('horizontal', 'vertical'):
                    raise ValueError(f'unknown flip_direction {direction!r}')
                logits = logits.flip(dims=(2,) if direction == 'horizontal' else (1,))
            size = meta.get('ori_shape')
            if size is not None and tuple(size[:2]) != tuple(logits.shape[-2:]):
                logits = F.interpolate(logits[None], size=tuple(size[:2]), mode='bilinear',
                                       align_corners=self.align_corners)[0]
            ds.set_data(dict(seg_logits=PixelData(data=logits),
                             pred_sem_seg=PixelData(data=logits.argmax(dim=0, keepdim=True))))
        return data_samples

    def _forward(self, inputs: Tensor, data_samples: OptSampleList = None) -> Tensor:
        """Logits (B, C, h, w) of same-size images (mmseg's 'tensor' mode)."""
        metas = [ds.metainfo for ds in data_samples] if data_samples else [{}] * inputs.shape[0]
        return self.inference(inputs, metas)
