"""Datasets (DATASETS) and transforms (TRANSFORMS)."""
from . import transforms  # noqa: F401
from .class_names import load_class_names  # noqa: F401
from .coco_object import COCOObjectDataset  # noqa: F401
from .pascal_voc20 import PascalVOC20Dataset  # noqa: F401
from .per_sample_seed import PerSampleSeedDataset, PerSampleSeedSampler  # noqa: F401
from .sa1b import SA1BDataset  # noqa: F401
from .cc3m_caption import CC3MCaptionDataset  # noqa: F401
from .coco_caption import COCOCaptionDataset  # noqa: F401
