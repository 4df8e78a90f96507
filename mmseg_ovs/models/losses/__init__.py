"""Registered losses."""
from .contrastive_loss import ContrastiveLoss  # noqa: F401
from .superpixel_kl_loss import SuperpixelKLLoss  # noqa: F401
