# COCO-Stuff-164k val2017, 171 classes (*_labelTrainIds.png) (5000 images): the coco_object files, read by COCOStuffDataset.
# Prepare with data_prep/prepare_benchmarks.py coco_stuff.
_base_ = './coco_object.py'
bench = 'coco_stuff171'
dataset_type = 'COCOStuffDataset'
test_dataloader = dict(dataset=dict(type=dataset_type))
