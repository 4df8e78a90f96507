"""Data transforms registered in mmseg TRANSFORMS."""
from .loading_unlabeled_masks import LoadUnlabeledMasks  # noqa: F401
from .pack_pixelclip_inputs import PackPixelCLIPInputs  # noqa: F401
from .pixelclip_strong_view import PixelCLIPStrongView  # noqa: F401
from .resize_crop_flip_masks import ResizeCropFlipWithMasks  # noqa: F401
from .load_superpixels import LoadSuperpixels  # noqa: F401
from .random_resized_crop_with_superpixels import RandomResizedCropWithSuperpixels  # noqa: F401
from .tokenize_caption import TokenizeCaption  # noqa: F401
