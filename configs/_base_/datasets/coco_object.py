# COCO-Object val2017, background + 80 things (*_instanceTrainIds.png) (5000 images). Prepare with data_prep/convert_coco_object.py.
_base_ = './benchmark_common.py'
bench = 'coco_object'
dataset_type = 'COCOObjectDataset'
data_root = 'data/coco_stuff164k'
test_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(img_path='images/val2017', seg_map_path='annotations/val2017'),
    ))
