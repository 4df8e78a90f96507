# SegCLIP ViT-B/16 on voc21 (SegCLIP protocol, seg_segmentation/configs/_base_/datasets/pascal_voc12.py):
# short side 224 (cv2 bilinear), slide 224/224, template 'single' ("a photo of a {}."),
# background threshold 0.80 (pascal_voc12.py:44); 'background' is thresholded, not prompted.
# Override e.g. --cfg-options model.bg_thresh=0.7 model.templates=imagenet model.test_cfg.stride="(112,112)"
_base_ = ['../../segclip_vitb16.py', '../../_base_/datasets/voc21.py', '../../_base_/protocols/segclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

# VOC names renamed as SegCLIP: diningtable->table, pottedplant->plant, tvmonitor->monitor (mmseg_ovs/datasets/class_names/cls_voc21_segclip.txt)
class_names = [
    'background', 'aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair',
    'cow', 'table', 'dog', 'horse', 'motorbike', 'person', 'plant', 'sheep', 'sofa', 'train',
    'monitor',
]
model = dict(
    class_names=class_names,
    templates='single',
    bg_thresh=0.80,
    logit_scale_max=100.0,  # s = min(exp(learned logit_scale), logit_scale_max)
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(224, 224)))
test_pipeline = {{_base_.segclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
