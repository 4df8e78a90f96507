"""Data transforms registered in mmseg TRANSFORMS."""
from .loading_unlabeled_masks import LoadUnlabeledMasks  # noqa: F401
from .pack_pixelclip_inputs import PackPixelCLIPInputs  # noqa: F401
from .pixelclip_strong_view import PixelCLIPStrongView  # noqa: F401
from .resize_crop_flip_masks import ResizeCropFlipWithMasks  # noqa: F401
