# SegCLIP ViT-B/16 on coco_object (SegCLIP protocol, seg_segmentation/configs/_base_/datasets/coco.py):
# short side 224 (cv2 bilinear), slide 224/224, template 'single' ("a photo of a {}."),
# background threshold 0.65 (coco.py:43); 'background' is thresholded, not prompted.
# Override e.g. --cfg-options model.bg_thresh=0.7 model.templates=imagenet model.test_cfg.stride="(112,112)"
_base_ = ['../../segclip_vitb16.py', '../../_base_/datasets/coco_object.py', '../../_base_/protocols/segclip_eval.py']
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)

# background + the 80 COCO thing names (mmseg_ovs/datasets/class_names/cls_coco_object.txt)
class_names = [
    'background', 'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck',
    'boat', 'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat',
    'dog', 'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
    'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
    'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
    'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
    'teddy bear', 'hair drier', 'toothbrush',
]
model = dict(
    class_names=class_names,
    templates='single',
    bg_thresh=0.65,
    logit_scale_max=100.0,  # s = min(exp(learned logit_scale), logit_scale_max)
    test_cfg=dict(mode='slide', crop_size=(224, 224), stride=(224, 224)))
test_pipeline = {{_base_.segclip_test_pipeline}}
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
