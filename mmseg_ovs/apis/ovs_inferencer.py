"""OVSInferencer: free-vocabulary inference on top of mmseg's MMSegInferencer."""
import colorsys
from typing import List, Optional

import numpy as np
from mmseg.apis import MMSegInferencer

from mmseg_ovs.datasets.class_names import Vocabulary

__all__ = ['OVSInferencer', 'make_palette']


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
        return super().__call__(inputs, batch_size=batch_size or self.batch_size, **kwargs)

    @staticmethod
    def label_maps(result: dict) -> List[np.ndarray]:
        preds = result['predictions']
        return preds if isinstance(preds, list) else [preds]
