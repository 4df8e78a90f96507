# PASCAL VOC 2012 val, 20 classes, background and boundaries ignored (1449 images): the voc21 files, read by PascalVOC20Dataset.
# Prepare with data_prep/prepare_benchmarks.py voc (checks only).
_base_ = './voc21.py'
bench = 'voc20'
dataset_type = 'PascalVOC20Dataset'
test_dataloader = dict(dataset=dict(type=dataset_type))
