"""PixelCLIPSegmentor: CLIP fine-tuned with unlabeled masks (Shin et al., NeurIPS 2024)."""
import copy
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType, SampleList
from torch import Tensor

from mmseg_ovs.datasets.class_names import Vocabulary
from mmseg_ovs.utils.mask_bits import unpack_mask_bits  # noqa: F401 (also re-exported)
from mmseg_ovs.utils.precision import float32_region
from .base_ovs_segmentor import BaseOVSSegmentor
from ..utils.momentum_teacher import momentum_update_

CLIP_MEAN = (122.7709383, 116.7460125, 104.09373615)
CLIP_STD = (68.5005327, 66.6321579, 70.3231630)


@MODELS.register_module()
class PixelCLIPSegmentor(BaseOVSSegmentor):
    """Student CLIP image encoder + frozen text encoder + momentum teacher + OnlineClusterHead.

    Training (``loss``), per batch: the student encodes the strong view squashed to
    ``clip_resolution``; the teacher is EMA-updated (gamma 0.999, multiply-then-add, bit-exact with
    the official code) *before* it encodes the weak view; :class:`OnlineClusterHead` clusters the
    unlabeled masks on teacher features and trains the student + prompts + decoder with sigmoid BCE.
    Under autocast the towers and the decoder run in the autocast dtype; the EMA update acts on the
    float32 parameters, and cluster targets, BCE and the test-time cosine logits are float32.

    Inference (``predict``, :class:`BaseOVSSegmentor`) is plain dense CLIP: squash to
    ``clip_resolution`` (aspect not kept; ``test_cfg`` default ``mode='squash'``), dense features
    bilinear to ``feature_size`` (64x64), L2-normalise, cosine with the class embeddings
    (``imagenet_select`` templates, averaged; fp32 by default, set the text encoder's
    ``cache_dtype='float16'`` for the official ViT fp16 classifier), then one bilinear resize from
    64x64 to the original size.

    Inputs come from a data preprocessor WITHOUT mean/std: images are 0-255 RGB and normalised here
    with the CLIP mean/std *before* any float resize (as the official code). In training the inputs
    hold the weak view in channels 0-2 and the strong view in channels 3-5 (see
    ``PackPixelCLIPInputs``); data samples carry ``unlabeled_masks`` (bool (n, H, W)) or
    ``unlabeled_masks_packed`` (uint8 bit planes) + ``metainfo['num_unlabeled_masks']``.

    Args:
        backbone: :class:`PixelCLIPDenseViT` (or ``OpenCLIPConvNeXt``) config.
        text_encoder: :class:`OpenCLIPTextEncoder` config (always frozen).
        decode_head: :class:`OnlineClusterHead` config.
        finetune: ``'attention'`` (ViT: ``attn.*`` of all blocks + positional embedding) or ``'full'``
            (whole image tower, ConvNeXt).
        ema_gamma: teacher momentum (0.999).
        clip_resolution: (h, w) student/teacher/test input size (320 ViT, 640 ConvNeXt).
        feature_size: test-time feature upsample (64, 64).
        class_names: test vocabulary in any form of ``parse_vocabulary`` (optional for training).
        templates: test templates (``'imagenet_select'``).
        load_pretrained: load the CLIP weights at build time (besides ``init_weights``).
        input_channel_order: ``'bgr'`` (mmcv pipelines; flipped to RGB here, per 3-channel view) or
            ``'rgb'``. Use a data preprocessor with ``bgr_to_rgb=False`` and no mean/std.
    """

    def __init__(self,
                 backbone: ConfigType,
                 text_encoder: ConfigType,
                 decode_head: ConfigType,
                 finetune: str = 'attention',
                 ema_gamma: float = 0.999,
                 clip_resolution: Sequence[int] = (320, 320),
                 feature_size: Sequence[int] = (64, 64),
                 class_names: Union[Vocabulary, None] = None,
                 templates: Union[str, Sequence[str]] = 'imagenet_select',
                 load_pretrained: bool = False,
                 input_channel_order: str = 'bgr',
                 train_cfg: OptConfigType = None,
                 test_cfg: OptConfigType = None,
                 data_preprocessor: OptConfigType = None,
                 init_cfg=None):
        if test_cfg is None:
            test_cfg = dict(mode='squash', squash_size=tuple(clip_resolution))
        super().__init__(test_cfg=test_cfg, data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if finetune not in ('attention', 'full'):
            raise ValueError(f"finetune must be 'attention' or 'full', got {finetune!r}")
        self.backbone = MODELS.build(backbone)
        text_encoder = dict(text_encoder)
        text_encoder['frozen'] = True
        text_encoder.setdefault('templates', templates)
        self.text_encoder = MODELS.build(text_encoder)
        if load_pretrained:
            for m in (self.backbone, self.text_encoder):
                if getattr(m, 'pretrained', None):
                    m.init_weights()
        self.decode_head = MODELS.build(decode_head)
        self.decode_head.init_prompts(self.text_encoder)
        self.finetune = finetune
        if input_channel_order not in ('bgr', 'rgb'):
            raise ValueError(f"input_channel_order must be 'bgr' or 'rgb', got {input_channel_order!r}")
        self.input_channel_order = input_channel_order
        self.ema_gamma = float(ema_gamma)
        self.clip_resolution = tuple(clip_resolution)
        self.feature_size = tuple(feature_size)
        self.train_cfg = train_cfg
        self.register_buffer('clip_mean', torch.tensor(CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('clip_std', torch.tensor(CLIP_STD).view(1, 3, 1, 1), persistent=False)
        self._set_trainable()
        # the teacher is an EMA copy of the whole image tower; frozen, updated only by EMA
        self.teacher = copy.deepcopy(self.backbone).requires_grad_(False)
        if class_names is not None:
            self.set_vocabulary(class_names, templates)

    # ------------------------------------------------------------------ setup
    def _set_trainable(self) -> None:
        self.text_encoder.requires_grad_(False)
        for name, p in self.backbone.visual.named_parameters():
            if self.finetune == 'full':
                p.requires_grad_(True)
            else:  # official: name contains "attn" or "position"
                p.requires_grad_('attn' in name or 'position' in name)

    def init_weights(self):
        super().init_weights()
        # the official teacher is a copy of the *loaded* CLIP and prompts are drawn from its token table
        self.sync_teacher()
        self.decode_head.init_prompts(self.text_encoder)

    def train(self, mode: bool = True):
        """The frozen EMA teacher always stays in eval mode (CLIP has no dropout/BN, so only the
        speed differs: ``nn.MultiheadAttention`` takes its fused inference path)."""
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def sync_teacher(self) -> None:
        torch._foreach_copy_(list(self.teacher.parameters()), list(self.backbone.parameters()))

    # ------------------------------------------------------------------ features
    def normalize(self, img: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 image in ``input_channel_order`` -> CLIP-normalised RGB float."""
        if self.input_channel_order == 'bgr':
            img = img.flip(1)
        return (img.float() - self.clip_mean) / self.clip_std

    def squash(self, img: Tensor) -> Tensor:
        return F.interpolate(img, size=self.clip_resolution, mode='bilinear', align_corners=False)

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) 0-255 image -> (B, C, h, w) student dense features of the squashed input."""
        return self.backbone.dense_features(self.squash(self.normalize(inputs)))

    @torch.no_grad()
    def momentum_update(self) -> None:
        if not hasattr(self, '_ema_pairs'):
            self._ema_pairs = (list(self.teacher.visual.parameters()),
                               list(self.backbone.visual.parameters()))
        momentum_update_(self._ema_pairs[0], self._ema_pairs[1], self.ema_gamma)

    def _masks(self, data_samples: SampleList, size, device) -> List[Tensor]:
        masks = []
        for ds in data_samples:
            if 'unlabeled_masks' in ds:
                m = ds.unlabeled_masks
            elif 'unlabeled_masks_packed' in ds:
                m = unpack_mask_bits(ds.unlabeled_masks_packed.to(device), int(ds.metainfo['num_unlabeled_masks']))
            else:
                raise KeyError('PixelCLIP training needs unlabeled masks in every data sample '
                               '(unlabeled_masks or unlabeled_masks_packed)')
            m = torch.as_tensor(m, device=device).bool()
            if m.ndim != 3 or (m.shape[0] and tuple(m.shape[-2:]) != tuple(size)):
                raise ValueError(f'unlabeled masks of shape {tuple(m.shape)} do not match the image {tuple(size)} '
                                 f'({ds.metainfo.get("img_path", "?")})')
            masks.append(m)
        return masks

    # ------------------------------------------------------------------ training
    def loss(self, inputs: Tensor, data_samples: SampleList, return_details: bool = False):
        """One PixelCLIP training forward. ``inputs``: (B, 6, H, W) weak|strong or (B, 3, H, W)."""
        weak = self.normalize(inputs[:, :3])
        strong = self.normalize(inputs[:, 3:6]) if inputs.shape[1] >= 6 else weak
        # the head takes the student features channels-last (the official layout of its cost volume)
        student_feat = self.backbone.dense_features(self.squash(strong)).permute(0, 2, 3, 1)
        with torch.no_grad():
            self.momentum_update()
            teacher_feat = self.teacher.dense_features(self.squash(weak))
        masks = self._masks(data_samples, inputs.shape[-2:], inputs.device)
        out = self.decode_head.loss(student_feat, teacher_feat, masks, self.text_encoder,
                                    return_details=return_details)
        if return_details:
            losses, det = out
            det.update(student_feat=student_feat, teacher_feat=teacher_feat)
            return losses, det
        return out

    # ------------------------------------------------------------------ inference
    def normalize_inputs(self, inputs: Tensor) -> Tensor:
        """0-255 images -> CLIP-normalised RGB, before any resize (official order)."""
        return self.normalize(inputs)

    def encode_decode(self, inputs: Tensor, batch_img_metas: List[dict]) -> Tensor:
        """Normalised (squashed) images -> cosine logits (B, num_classes, *feature_size)."""
        feat = self.backbone.dense_features(inputs)
        feat = F.interpolate(feat, size=self.feature_size, mode='bilinear', align_corners=False)
        with float32_region(feat.device.type):  # cosine logits in fp32 under autocast
            feat = F.normalize(feat.float(), dim=1)
            cls = self.class_embeddings().float()  # (K, C), normalised
            return torch.einsum('bchw,kc->bkhw', feat, cls)
