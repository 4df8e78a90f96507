"""mmseg_ovs: open-vocabulary semantic segmentation (SegCLIP, PixelCLIP) for MMSegmentation 1.x."""
from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('mmseg_ovs/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


setup(
    name='mmseg_ovs',
    version=read_version(),
    description='Open-vocabulary semantic segmentation (SegCLIP, PixelCLIP) as an MMSegmentation 1.x plugin',
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmseg_ovs', 'mmseg_ovs.*']),
    include_package_data=True,
    package_data={'mmseg_ovs': ['datasets/class_names/*.txt']},
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.6', 'torchvision', 'mmengine==0.10.7', 'mmcv>=2.0.0,<2.2.0', 'mmsegmentation==1.2.2',
        'mmpretrain>=1.2.0', 'open_clip_torch>=3.0', 'segment-anything', 'pycocotools', 'scikit-image',
    ],
    license='Apache-2.0',
)
