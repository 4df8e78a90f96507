"""COCO-Object: COCO val2017 with the 80 thing classes plus background."""
from mmseg.datasets import BaseSegDataset, COCOStuffDataset
from mmseg.registry import DATASETS


@DATASETS.register_module()
class COCOObjectDataset(BaseSegDataset):
    """COCO-Object (81 classes: background + 80 COCO things, GroupViT/SegCLIP protocol).

    Annotations are ``<image id>_instanceTrainIds.png`` label maps: 0 background, 1..80 the
    things in COCO category-id order (255 would be ignored; the field's maps have none).
    ``data_prep/convert_coco_object.py`` writes them from the COCO-Stuff-164k stuffthingmaps as
    GroupViT/SegCLIP/SCLIP do (``--from-instances``: from the instance annotations instead).
    """
    METAINFO = dict(
        classes=('background', ) + COCOStuffDataset.METAINFO['classes'][:80],
        palette=[[0, 0, 0]] + COCOStuffDataset.METAINFO['palette'][:80])

    def __init__(self,
                 img_suffix='.jpg',
                 seg_map_suffix='_instanceTrainIds.png',
                 reduce_zero_label=False,
                 **kwargs) -> None:
        super().__init__(
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            reduce_zero_label=reduce_zero_label,
            **kwargs)
