"""OVSInferencer: free-vocabulary inference on top of mmseg's MMSegInferencer."""
import colorsys
from typing import List, Optional, Sequence, Union

import numpy as np
from mmseg.apis import MMSegInferencer

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
        vocabulary: class names (an entry may be a list of synonyms); None keeps the config's
            ``model.class_names``. For segmentors that predict
            background by thresholding (SegCLIP, the CLIP baseline with ``bg_thresh``), put
            ``'background'`` first.
        device: ``'cpu'``, ``'cuda'``, ... (default: CUDA when available).

    Example::

        inferencer = OVSInferencer('configs/quickstart/segclip_toy.py', 'segclip.pth',
                                   vocabulary=['background', 'circle', 'star'])
        label_maps = inferencer(['a.png', 'b.png'], batch_size=2)['predictions']
        label_maps = inferencer(image_array, vocabulary=['background', 'ring'])['predictions']
    """

    def __init__(self,
                 config: str,
                 checkpoint: Optional[str] = None,
                 vocabulary: Optional[Sequence[Union[str, Sequence[str]]]] = None,
                 device: Optional[str] = None,
                 palette: Optional[List[List[int]]] = None) -> None:
        import mmseg_ovs  # noqa: F401  registers components and the checkpoint allow-list

        self._palette_override = palette
        super().__init__(model=config, weights=checkpoint, device=device, scope='mmseg')
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        elif getattr(self.model, 'class_names', None):
            # keep the vocabulary the config gave the model; only name it for the visualizer
            names = [c if isinstance(c, str) else c[0] for c in self.model.class_names]
            self._set_display_classes(names)

    def set_vocabulary(self, vocabulary: Sequence[Union[str, Sequence[str]]]) -> None:
        """Switch the model and the visualizer to a new vocabulary."""
        if not vocabulary:
            raise ValueError('empty vocabulary')
        if not hasattr(self.model, 'set_vocabulary'):
            raise TypeError(f'{type(self.model).__name__} has no set_vocabulary(); '
                            'it is not an open-vocabulary segmentor')
        self.model.set_vocabulary(list(vocabulary))
        self._set_display_classes([v if isinstance(v, str) else v[0] for v in vocabulary])

    def _set_display_classes(self, names: List[str]) -> None:
        palette = self._palette_override or make_palette(
            len(names), background_first=names[0].strip().lower() == 'background')
        self.model.dataset_meta = dict(classes=tuple(names), palette=palette)
        self.visualizer.set_dataset_meta(classes=names, palette=palette)
        self.vocabulary = names

    def __call__(self, inputs, vocabulary=None, batch_size: int = 1, **kwargs) -> dict:
        """Run inference; ``vocabulary`` (optional) replaces the current one first.

        Returns mmseg's result dict: ``predictions`` is an (H, W) int label map per input (a single
        array for a single input), ``visualization`` the overlays when ``return_vis=True``.
        """
        if vocabulary is not None:
            self.set_vocabulary(vocabulary)
        return super().__call__(inputs, batch_size=batch_size, **kwargs)

    @staticmethod
    def label_maps(result: dict) -> List[np.ndarray]:
        preds = result['predictions']
        return preds if isinstance(preds, list) else [preds]
