"""OVSInferencer: free-vocabulary inference on top of mmseg's MMSegInferencer."""
import colorsys
import os.path as osp
from typing import List, Optional

import numpy as np
from mmseg.apis import MMSegInferencer

from mmseg_ovs.datasets.class_names import Vocabulary

__all__ = ['OVSInferencer', 'make_palette', 'check_inference_inputs']


def check_inference_inputs(inputs, num_classes: int, max_logit_bytes: int) -> None:
    """Refuse, naming the input, what would give a silent wrong result or exhaust memory: a missing,
    empty or undecodable file; an array that is not (H, W) / (H, W, 3) uint8 BGR (e.g. RGBA or 16-bit);
    an image whose (num_classes, H, W) float32 logits would exceed ``max_logit_bytes`` (checked from
    the file header, before decoding)."""
    from PIL import Image

    items = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
    for i, item in enumerate(items):
        if isinstance(item, str):
            name = repr(item)
            if not osp.isfile(item):
                raise FileNotFoundError(f'image not found: {item!r}')
            if osp.getsize(item) == 0:
                raise ValueError(f'image {item!r} is empty (0 bytes)')
            try:
                with Image.open(item) as im:
                    w, h = im.size
            except Exception as err:  # noqa: BLE001  (PIL raises several types)
                raise ValueError(f'cannot read image {item!r}: {err}') from err
        elif isinstance(item, np.ndarray):
            name = f'input {i} (array of shape {item.shape}, {item.dtype})'
            if not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] == 3)):
                raise ValueError(f'{name}: expected an (H, W) or (H, W, 3) BGR image'
                                 + ('; drop the alpha channel with [..., :3]' if item.ndim == 3 and item.shape[2] == 4
                                    else ''))
            if item.dtype != np.uint8:
                raise ValueError(f'{name}: expected uint8 (0-255) pixels; scale {item.dtype} images to 8 bits first')
            h, w = item.shape[:2]
        else:
            continue
        need = 4 * int(num_classes) * int(h) * int(w)
        if need > max_logit_bytes:
            raise ValueError(f'{name} is {h}x{w}: its {num_classes}-class float32 logits would need '
                             f'{need / 2**30:.1f} GiB (> max_logit_bytes={max_logit_bytes / 2**30:.1f} GiB); '
                             'downscale the image or raise OVSInferencer.max_logit_bytes')


def make_palette(num_classes: int, background_first: bool = False) -> List[List[int]]:
    """Distinct, deterministic RGB colours (golden-ratio hues); black for a leading background."""
    palette = []
    for i in range(num_classes):
        if background_first and i == 0:
            palette.append([0, 0, 0])
            continue
        hue = (i * 0.618033988749895) % 1.0
        r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
        palette.append([int(r * 255), int(g * 255), int(b * 255)])
    return palette


class OVSInferencer(MMSegInferencer):
    """Label maps for any vocabulary chosen at call time.

    Args:
        config: an mmseg_ovs config file or ``Config`` (its test pipeline preprocesses the inputs).
        checkpoint: a checkpoint file (``weights_only`` loading).
        vocabulary: any form of ``parse_vocabulary``: a benchmark key (``'voc21'``), a ``cls_*.txt``
            path, or a list of names (an entry may be a list of synonyms or an ``'a|b'`` string);
            None keeps the config's ``model.class_names``. For segmentors that predict background
            by thresholding (SegCLIP, the CLIP baseline with ``bg_thresh``), put ``'background'``
            first.
        device: ``'cpu'``, ``'cuda'``, ... (default: CUDA when available).
        batch_size: images per forward (default 1); images of different sizes may share a batch
            (padded by ``OVSDataPreProcessor``, each inferred on its own area: the label maps equal
            those of batch size 1).

    Example::

        inferencer = OVSInferencer('configs/quickstart/segclip_toy.py', 'segclip.pth',
                                   vocabulary=['background', 'circle', 'star'])
        label_maps = inferencer(['a.png', 'b.png'], batch_size=2)['predictions']
        label_maps = inferencer(image_array, vocabulary=['background', 'ring'])['predictions']
    """

    #: largest (num_classes, H, W) float32 logit map an input may need (bounded memory; larger inputs
    #: are refused by :func:`check_inference_inputs`)
    max_logit_bytes = 8 * 2**30

    def __init__(self,
                 config: str,
                 checkpoint: Optional[str] = None,
                 vocabulary: Optional[Vocabulary] = None,
                 device: Optional[str] = None,
                 palette: Optional[List[List[int]]] = None,
                 batch_size: int = 1) -> None:
        import mmseg_ovs  # noqa: F401  registers components and the checkpoint allow-list

        self._palette_override = palette
        self.batch_size = int(batch_size)
        super().__init__(model=config, weights=checkpoint, device=device, scope='mmseg')
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        elif getattr(self.model, 'class_names', None):
            # keep the vocabulary the config gave the model; only name it for the visualizer
            self._set_display_classes(list(self.model.class_names))

    def _load_weights_to_model(self, model, checkpoint: Optional[dict], cfg) -> None:
        """mmseg's loading, then the model settings the checkpoint records (e.g. a converted official
        SegCLIP release needs ``neck.batch_mixing_legacy=True``), as the runner's
        ``CheckpointModelSettingsHook`` does for ``tools/test.py`` (its ``ignore`` list is honoured)."""
        from mmseg_ovs.engine.checkpoint_settings_hook import MODEL_SETTINGS_KEY, apply_model_settings

        super()._load_weights_to_model(model, checkpoint, cfg)
        if checkpoint is None:
            return
        ignore = []
        for hook in (cfg.get('custom_hooks') or []) if cfg is not None else []:
            if hook.get('type') in ('CheckpointModelSettingsHook', 'mmseg.CheckpointModelSettingsHook'):
                ignore += list(hook.get('ignore', ()))
        apply_model_settings(model, (checkpoint.get('meta') or {}).get(MODEL_SETTINGS_KEY), ignore)

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Switch the model and the visualizer to a new vocabulary (any ``parse_vocabulary`` form)."""
        if not hasattr(self.model, 'set_vocabulary'):
            raise TypeError(f'{type(self.model).__name__} has no set_vocabulary(); '
                            'it is not an open-vocabulary segmentor')
        self.model.set_vocabulary(vocabulary)
        self._set_display_classes(list(self.model.class_names))

    def _set_display_classes(self, names: List[str]) -> None:
        palette = self._palette_override or make_palette(
            len(names), background_first=names[0].strip().lower() == 'background')
        self.model.dataset_meta = dict(classes=tuple(names), palette=palette)
        self.visualizer.set_dataset_meta(classes=names, palette=palette)
        self.vocabulary = names

    def __call__(self, inputs, vocabulary: Optional[Vocabulary] = None, batch_size: Optional[int] = None,
                 **kwargs) -> dict:
        """Run inference; ``vocabulary`` (optional) replaces the current one first; ``batch_size``
        (optional) overrides the constructor's.

        Returns mmseg's result dict: ``predictions`` is an (H, W) int label map per input (a single
        array for a single input), ``visualization`` the overlays when ``return_vis=True``.
        """
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        check_inference_inputs(inputs, len(getattr(self, 'vocabulary', None) or []) or 1, self.max_logit_bytes)
        return super().__call__(inputs, batch_size=batch_size or self.batch_size, **kwargs)

    @staticmethod
    def label_maps(result: dict) -> List[np.ndarray]:
        preds = result['predictions']
        return preds if isinstance(preds, list) else [preds]
