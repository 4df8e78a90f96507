"""LoadSuperpixels: read an image's Felzenszwalb id map from the sharded superpixel store."""
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from ..superpixel_store import SuperpixelStore

__all__ = ['LoadSuperpixels']


@TRANSFORMS.register_module()
class LoadSuperpixels(BaseTransform):
    """Add ``superpixels`` (H', W') int64 for ``results['superpixel_key']``.

    Args:
        store_root (str): folder written by data_prep/segclip_superpixels.py; if None, taken from
            ``results['superpixel_root']`` (set by the dataset).
    """

    def __init__(self, store_root: str = None):
        self.store_root = store_root
        self._stores = {}

    def _store(self, root):
        if root not in self._stores:  # opened lazily, once per dataloader worker
            self._stores[root] = SuperpixelStore(root)
        return self._stores[root]

    def transform(self, results: dict) -> dict:
        root = self.store_root or results.get('superpixel_root')
        if root is None:
            raise KeyError('LoadSuperpixels needs store_root or results["superpixel_root"]')
        results['superpixels'] = self._store(root)[results['superpixel_key']]
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(store_root={self.store_root!r})'
