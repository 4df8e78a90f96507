"""OnlineDINOMaskPreProcessor: PixelCLIP's online DINO k-means masks on the weak view (tiny random DINO)."""
import numpy as np
import torch
from mmseg.structures import SegDataSample


def _reference_kmeans(x, init_idx, max_iter=100, tol=1e-4):
    """Single-item k-means as fast_pytorch_kmeans.KMeans (euclidean, random init, empty -> 0)."""
    c = x[init_idx].clone()
    closest = None
    for _ in range(max_iter):
        closest = (2 * x @ c.T - (c ** 2).sum(1)[None]).argmax(1)
        new = torch.stack([x[closest == j].mean(0) if (closest == j).any() else torch.zeros(x.shape[1])
                           for j in range(len(c))])
        err = ((new - c) ** 2).sum()
        c = new
        if err <= tol:
            break
    return closest


def test_batched_kmeans_matches_per_image_reference():
    from mmseg_ovs.models.data_preprocessors.online_dino_masks import batched_kmeans
    x = torch.randn(3, 50, 6)
    x[1, :25] += 4  # different convergence speeds per item
    gen = torch.Generator().manual_seed(0)
    labels = batched_kmeans(x, 5, generator=gen)
    init = torch.rand(3, 50, generator=torch.Generator().manual_seed(0)).argsort(1)[:, :5]
    for b in range(3):
        assert torch.equal(labels[b], _reference_kmeans(x[b], init[b]))


def test_online_dino_masks_in_the_preprocessor(tmp_path):
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import MODELS
    from mmseg_ovs.models.data_preprocessors.online_dino_masks import build_dino_vit
    tiny = dict(embed_dim=24, depth=1, num_heads=2)
    torch.manual_seed(0)
    dino = build_dino_vit(None, **tiny)
    ckpt = tmp_path / 'dino.pth'
    torch.save(dino.state_dict(), ckpt)  # a local weights file, as dino_deitsmall16_pretrain.pth
    pre = MODELS.build(dict(type='OnlineDINOMaskPreProcessor', mean=None, std=None, bgr_to_rgb=False,
                            size=(64, 80), dino_checkpoint=str(ckpt), dino_kwargs=tiny, seed=0))
    assert not any('dino' in k for k in pre.state_dict())  # never saved in checkpoints
    rng = np.random.default_rng(0)
    samples, inputs = [], []
    for i in range(2):
        img = rng.integers(0, 255, (6, 64, 80), dtype=np.uint8)
        img[:3, :, :40] //= 4  # two clear regions in the weak view
        inputs.append(torch.from_numpy(img))
        ds = SegDataSample(metainfo=dict(img_path=f'{i}.jpg'))
        ds.unlabeled_masks_packed = torch.zeros(1, 64, 80, dtype=torch.uint8)
        samples.append(ds)
    out = pre(dict(inputs=inputs, data_samples=samples), training=True)
    for b, ds in enumerate(out['data_samples']):
        m = ds.unlabeled_masks
        assert m.shape == (16, 64, 80) and m.dtype == torch.bool and 'unlabeled_masks_packed' not in ds
        assert ds.metainfo['num_unlabeled_masks'] == 16
        assert torch.equal(m.sum(0), torch.ones(64, 80, dtype=torch.long))  # a partition of the crop
        assert torch.equal(m, m[:, ::16, ::16].repeat_interleave(16, 1).repeat_interleave(16, 2))  # 16 px cells
    # the same clusters as DINO tokens + k-means by hand (ImageNet normalisation of the RGB weak view)
    x = out['inputs'][:, :3].float().flip(1)
    x = (x - torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)) / torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    tokens = dino.forward_features(x)[:, dino.num_prefix_tokens:].detach()
    init = torch.rand(2, 20, generator=torch.Generator().manual_seed(0)).argsort(1)[:, :16]
    for b in range(2):
        labels = _reference_kmeans(tokens[b], init[b]).view(4, 5)
        got = out['data_samples'][b].unlabeled_masks[:, ::16, ::16].float().argmax(0)
        assert torch.equal(got, labels)
    # test mode: no DINO work, no masks
    out = pre(dict(inputs=inputs, data_samples=[SegDataSample()]), training=False)
    assert 'unlabeled_masks' not in out['data_samples'][0]


def test_dino_config_reads_images_only(tmp_path):
    """The _dino recipe: SA-1B images without mask files; the weak view goes to the preprocessor."""
    import os.path as osp
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from PIL import Image
    import mmseg_ovs  # noqa: F401
    from mmseg.registry import DATASETS
    init_default_scope('mmseg')
    (tmp_path / 'images').mkdir()
    Image.fromarray(np.zeros((60, 80, 3), np.uint8)).save(tmp_path / 'images' / 'a.jpg')
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(root, 'configs/pixelclip/pixelclip_vitb16_dino.py'))
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path), ann_file='')
    sample = DATASETS.build(cfg.train_dataloader.dataset)[0]
    assert sample['inputs'].shape == (6, 640, 640) and 'unlabeled_masks_packed' not in sample['data_samples']


def test_dino_recipe_trains_two_iterations(tmp_path, tiny_clip_cfg):
    """configs/pixelclip/pixelclip_vitb16_dino.py through the real Runner: tiny CLIP, tiny random DINO
    from a local file, masks made online by the data preprocessor, finite losses."""
    import os.path as osp
    from mmengine.config import Config
    from mmengine.runner import Runner
    from PIL import Image
    from mmseg_ovs.models.data_preprocessors.online_dino_masks import build_dino_vit
    tiny = dict(embed_dim=24, depth=1, num_heads=2)
    torch.save(build_dino_vit(None, **tiny).state_dict(), tmp_path / 'dino.pth')
    (tmp_path / 'images').mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / 'images' / f'{i}.png')
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cfg = Config.fromfile(osp.join(root, 'configs/pixelclip/pixelclip_vitb16_dino.py'))
    cfg.work_dir = str(tmp_path / 'work')
    cfg.model.backbone = dict(type='PixelCLIPDenseViT', model_cfg=tiny_clip_cfg)
    cfg.model.text_encoder = dict(type='OpenCLIPTextEncoder', model_cfg=tiny_clip_cfg)
    cfg.model.decode_head.update(num_clusters=8, mask_resolution=(32, 32))
    cfg.model.update(clip_resolution=(64, 64), class_names=['cat', 'dog'])
    cfg.model.data_preprocessor.update(size=(48, 48), dino_checkpoint=str(tmp_path / 'dino.pth'), dino_kwargs=tiny)
    cfg.train_dataloader.update(batch_size=2, num_workers=0, persistent_workers=False)
    cfg.train_dataloader.dataset.update(data_root=str(tmp_path), ann_file='', img_suffix='.png')
    cfg.train_dataloader.dataset.pipeline[1].update(short_edges=64, max_size=200, crop_size=(48, 48))
    cfg.train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, val_interval=100)
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    cfg.param_scheduler[0].update(T_max=2, end=2)
    runner = Runner.from_cfg(cfg)
    seen = []
    orig = runner.model.data_preprocessor.dino_masks

    def spy(weak):
        masks = orig(weak)
        seen.append(masks)
        return masks

    runner.model.data_preprocessor.dino_masks = spy
    runner.train()
    assert len(seen) == 2 and seen[0].shape == (2, 16, 48, 48)
    loss = runner.message_hub.get_scalar('train/loss').current()
    assert np.isfinite(loss) and loss > 0
