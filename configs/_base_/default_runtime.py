# Runtime shared by every mmseg_ovs config.
default_scope = 'mmseg'
custom_imports = dict(imports=['mmseg_ovs'], allow_failed_imports=False)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/ switch to gloo automatically when CUDA is absent; timeout (s): a collective whose peer
    # rank died raises after this long instead of hanging
    dist_cfg=dict(backend='nccl', timeout=1800),
)
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
# flip x multi-scale TTA (tools/test.py --tta): mean of the views' softmaxes, any vocabulary size
tta_model = dict(type='OVSTTAModel')
# torch.compile of the image towers' blocks (tools/train.py, tools/test.py: --cfg-options
# compile_image_towers=True, or a dict of torch.compile kwargs); off until measured on a GPU
compile_image_towers = False
