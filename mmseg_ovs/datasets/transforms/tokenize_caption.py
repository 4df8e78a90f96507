"""TokenizeCaption: CLIP BPE tokenisation of a training caption (open_clip tokenizer)."""
import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

__all__ = ['TokenizeCaption']


@TRANSFORMS.register_module()
class TokenizeCaption(BaseTransform):
    """``caption`` -> ``caption_tokens`` (context_length,) int64: [SOT] + BPE + [EOT], zero-padded,
    truncated to ``context_length`` with the last id set to EOT (SegCLIP: 32)."""

    def __init__(self, context_length: int = 32):
        self.context_length = context_length
        self._tokenizer = None

    def transform(self, results: dict) -> dict:
        if self._tokenizer is None:
            import open_clip
            self._tokenizer = open_clip.get_tokenizer('ViT-B-16')
        caption = results.get('caption')
        if not isinstance(caption, str) or not caption.strip():
            raise ValueError(f'empty or missing caption for {results.get("img_path")!r}')
        tokens = self._tokenizer([caption], context_length=self.context_length)[0]
        results['caption_tokens'] = tokens.numpy().astype(np.int64)
        return results

    def __repr__(self):
        return f'{self.__class__.__name__}(context_length={self.context_length})'
