"""PASCAL VOC 2012 without background ("VOC20")."""
from mmseg.datasets import PascalVOCDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class PascalVOC20Dataset(PascalVOCDataset):
    """PASCAL VOC 2012, 20 object classes, background ignored.

    Reads the official ``SegmentationClass`` PNGs (0 background, 1..20 objects, 255 boundary)
    with ``reduce_zero_label=True``: background and boundary become 255 (ignored) and the
    objects 0..19. This is the "VOC-20" protocol of PixelCLIP (detectron2
    ``voc_2012_test_sem_seg``) and of the SCLIP-family tables. PixelCLIP additionally drops
    all-background images; they contribute nothing to the confusion matrix, so mIoU is equal.

    Args:
        ann_file (str): split file, e.g. ``ImageSets/Segmentation/val.txt``.
    """
    METAINFO = dict(
        classes=PascalVOCDataset.METAINFO['classes'][1:],
        palette=PascalVOCDataset.METAINFO['palette'][1:])

    def __init__(self, ann_file, reduce_zero_label=True, **kwargs) -> None:
        super().__init__(ann_file=ann_file, reduce_zero_label=reduce_zero_label, **kwargs)
