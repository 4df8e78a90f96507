"""The main job on toy data (no downloads): both methods trained from a toy-pretrained tiny CLIP and
compared with the training-free dense-CLIP baseline.

    python tools/quickstart.py --out outputs/quickstart [--scale 1.0] [--dist-procs 1]

Stages (each is skipped when its output exists, so a re-run resumes):
  1. data       data_prep/make_toy_dataset.py (captions, SA-1B-style masks, labeled val split)
                + data_prep/segclip_superpixels.py (Felzenszwalb, as for COCO)
  2. clip       tiny CLIP pre-trained contrastively on the toy captions (tools/train.py or
                tools/dist_train.sh), exported as an OpenCLIP file with tools/export_clip_weights.py
  3. segclip    SegCLIP fine-tuned from it (contrastive + superpixel KL + reconstruction)
  4. pixelclip  PixelCLIP fine-tuned from it (EMA teacher, Sinkhorn clusters, mask decoder)
  5. eval       tools/test.py on the toy val split: the tiny CLIP through the dense-CLIP baseline,
                SegCLIP and PixelCLIP (no-background protocol, 6 shape classes)
  6. picture    predictions of the three methods on a few val images (OVSInferencer)
Writes DIR/results.json ({"clip_baseline": mIoU, "segclip": mIoU, "pixelclip": mIoU, ...}) and
DIR/comparison.png.
"""
import argparse
import glob
import json
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PY = sys.executable


def log(msg):
    print(msg, flush=True)


def run(args, log_path, env=None):
    """Run a project script, keeping its full log; on failure show the log's tail."""
    full_env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    full_env.update(env or {})
    start = time.time()
    with open(log_path, 'w') as f:
        proc = subprocess.run(args, cwd=ROOT, env=full_env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = open(log_path).read()[-4000:]
        raise SystemExit(f'FAILED ({proc.returncode}): {" ".join(map(str, args))}\n--- {log_path} ---\n{tail}')
    log(f'      {time.time() - start:.0f}s  (log: {osp.relpath(log_path)})')


def write_json_atomic(obj, path):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def data_options(data):
    return [f'train_dataloader.dataset.data_root={data}/train', f'test_dataloader.dataset.data_root={data}']


def train(cfg, work, iters, opts, logs, dist_procs=1):
    """tools/train.py (or tools/dist_train.sh with ``dist_procs`` > 1); returns the checkpoint."""
    ckpt = osp.join(work, f'iter_{iters}.pth')
    if osp.isfile(ckpt):
        log('      (done before)')
        return ckpt
    opts = ['--cfg-options', f'train_cfg.max_iters={iters}', f'default_hooks.checkpoint.interval={iters}', *opts]
    name = osp.splitext(osp.basename(cfg))[0]
    if dist_procs > 1:
        run(['bash', 'tools/dist_train.sh', cfg, str(dist_procs), '--work-dir', work, *opts],
            osp.join(logs, f'train_{name}.log'), env={'PYTHON': PY})
    else:
        run([PY, 'tools/train.py', cfg, '--work-dir', work, *opts], osp.join(logs, f'train_{name}.log'))
    if not osp.isfile(ckpt):
        raise SystemExit(f'training finished without {ckpt}')
    return ckpt


def evaluate(cfg, ckpt, work, opts, logs):
    """tools/test.py; returns mIoU (%)."""
    name = osp.splitext(osp.basename(cfg))[0]
    run([PY, 'tools/test.py', cfg, ckpt, '--work-dir', work, '--cfg-options', *opts],
        osp.join(logs, f'test_{name}.log'))
    metrics = sorted(glob.glob(osp.join(work, '*', '*.json')))
    if not metrics:
        raise SystemExit(f'tools/test.py wrote no metrics under {work}')
    return float(json.load(open(metrics[-1]))['mIoU'])


def comparison_picture(out, data, methods, num_images=4):
    """Rows: val images; columns: image, ground truth, each method's prediction."""
    import numpy as np
    from PIL import Image, ImageDraw

    from mmseg_ovs.apis import OVSInferencer, make_palette

    classes = [line.strip() for line in open(osp.join(data, 'cls_toy.txt')) if line.strip()]
    palette = np.array([[0, 0, 0]] + make_palette(len(classes)), np.uint8)  # index 0: ignored background
    images = sorted(glob.glob(osp.join(data, 'val', 'images', '*.png')))[:num_images]
    columns = [('image', [np.asarray(Image.open(p).convert('RGB')) for p in images])]
    gts = [np.asarray(Image.open(p.replace('/images/', '/labels/'))) for p in images]
    columns.append(('ground truth', [palette[g] for g in gts]))
    for name, (cfg, ckpt) in methods.items():
        inferencer = OVSInferencer(cfg, ckpt, vocabulary=classes, device='cpu')
        preds = OVSInferencer.label_maps(inferencer(images, batch_size=len(images)))
        # predictions index the 6 shapes; ground-truth background (0) is shown black in every column
        columns.append((name, [palette[np.where(g == 0, 0, p + 1)] for p, g in zip(preds, gts)]))
    size, pad, head = 128, 4, 16
    canvas = Image.new('RGB', (len(columns) * (size + pad) + pad, len(images) * (size + pad) + pad + head),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, (title, tiles) in enumerate(columns):
        x = pad + c * (size + pad)
        draw.text((x, 2), title, fill=(0, 0, 0))
        for r, tile in enumerate(tiles):
            canvas.paste(Image.fromarray(tile).resize((size, size), Image.NEAREST), (x, head + pad + r * (size + pad)))
    path = osp.join(out, 'comparison.png')
    canvas.save(path + '.tmp.png')
    os.replace(path + '.tmp.png', path)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='outputs/quickstart')
    parser.add_argument('--scale', type=float, default=1.0,
                        help='multiplies every stage\'s iterations and the dataset size (tests use ~0.05)')
    parser.add_argument('--dist-procs', type=int, default=1,
                        help='run the CLIP pre-training stage with tools/dist_train.sh on N processes')
    args = parser.parse_args()
    out = osp.abspath(args.out)
    data, logs = osp.join(out, 'data'), osp.join(out, 'logs')
    os.makedirs(logs, exist_ok=True)
    n = lambda v, lo: max(lo, int(round(v * args.scale)))  # noqa: E731
    iters = dict(clip=n(1000, 4), segclip=n(300, 2), pixelclip=n(300, 2))
    t0 = time.time()

    log('[1/6] toy data: scenes, captions, SA-1B-style masks, labeled val split, superpixels')
    if not osp.isfile(osp.join(data, 'cls_toy.txt')) or not osp.isdir(osp.join(data, 'val', 'labels')):
        run([PY, 'data_prep/make_toy_dataset.py', '--out', data, '--num-train', str(n(3000, 16)),
             '--num-val', str(n(100, 8)), '--size', '64', '--seed', '0'], osp.join(logs, 'make_toy_dataset.log'))
    # Felzenszwalb as the paper (scale 224, sigma 0.9) with min_size scaled to the 64 px images' area
    run([PY, 'data_prep/segclip_superpixels.py', osp.join(data, 'train'), osp.join(data, 'train', 'superpixels'),
         '--num-shards', '8', '--workers', '2', '--short-side', '0', '--min-size', '18'],
        osp.join(logs, 'superpixels.log'))

    log(f'[2/6] tiny CLIP: contrastive pre-training on the toy captions ({iters["clip"]} iterations)')
    clip_ckpt = train('configs/quickstart/clip_pretrain_toy.py', osp.join(out, 'clip'), iters['clip'],
                      [f'train_dataloader.dataset.data_root={data}/train'], logs, args.dist_procs)
    tiny_clip = osp.join(out, 'tiny_clip.pt')
    run([PY, 'tools/export_clip_weights.py', clip_ckpt, tiny_clip], osp.join(logs, 'export_clip.log'))
    weights = [f'model.backbone.pretrained={tiny_clip}', f'model.text_encoder.pretrained={tiny_clip}']

    log(f'[3/6] SegCLIP fine-tuning ({iters["segclip"]} iterations)')
    seg_ckpt = train('configs/quickstart/segclip_toy.py', osp.join(out, 'segclip'), iters['segclip'],
                     [*data_options(data), f'train_dataloader.dataset.superpixel_root={data}/train/superpixels',
                      *weights], logs)

    log(f'[4/6] PixelCLIP fine-tuning ({iters["pixelclip"]} iterations)')
    pix_ckpt = train('configs/quickstart/pixelclip_toy.py', osp.join(out, 'pixelclip'), iters['pixelclip'],
                     [*data_options(data), *weights], logs)

    log('[5/6] evaluation with tools/test.py on the toy val split (6 shapes, background ignored)')
    test_opts = [f'test_dataloader.dataset.data_root={data}']
    methods = {
        'clip_baseline': ('configs/quickstart/clip_baseline_toy.py', clip_ckpt),
        'segclip': ('configs/quickstart/segclip_toy.py', seg_ckpt),
        'pixelclip': ('configs/quickstart/pixelclip_toy.py', pix_ckpt),
    }
    results = {}
    for name, (cfg, ckpt) in methods.items():
        results[name] = evaluate(cfg, ckpt, osp.join(out, 'eval', name), test_opts, logs)
        log(f'      {name}: mIoU {results[name]:.2f}')

    log('[6/6] comparison picture')
    sys.path.insert(0, ROOT)
    picture = comparison_picture(out, data, {k: (osp.join(ROOT, c), p) for k, (c, p) in methods.items()})
    results.update(protocol='toy val split, 6 shape classes, background ignored (reduce_zero_label)',
                   iterations=iters, wall_time_s=round(time.time() - t0, 1), picture=picture)
    write_json_atomic(results, osp.join(out, 'results.json'))
    log(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
