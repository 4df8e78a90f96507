"""The main job on toy data (no downloads): build the toy dataset, train, evaluate, write results.

    python tools/quickstart.py --out outputs/quickstart [--iters N] [--num-train N] [--num-val N]

Stage list (each stage is skipped when its output already exists, so a re-run resumes):
  1. data_prep/make_toy_dataset.py -> DIR/data
  2. smoke stage: a stock mmseg EncoderDecoder with the open_clip ViT backbone trained with
     tools/train.py on the labeled toy split and evaluated with tools/test.py
Results go to DIR/results.json.
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


def run(args, log_path):
    """Run a project script, streaming a one-line status and keeping its full log."""
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    start = time.time()
    with open(log_path, 'w') as log:
        proc = subprocess.run(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = open(log_path).read()[-3000:]
        raise SystemExit(f'FAILED ({proc.returncode}): {" ".join(args)}\n--- {log_path} ---\n{tail}')
    print(f'  done in {time.time() - start:.0f}s (log: {log_path})', flush=True)


def write_json_atomic(obj, path):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='outputs/quickstart')
    parser.add_argument('--iters', type=int, default=200)
    parser.add_argument('--num-train', type=int, default=100)
    parser.add_argument('--num-val', type=int, default=40)
    args = parser.parse_args()
    out = osp.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    data = osp.join(out, 'data')
    py = sys.executable

    print('[1/2] toy dataset', flush=True)
    run([py, 'data_prep/make_toy_dataset.py', '--out', data, '--num-train', str(args.num_train),
         '--num-val', str(args.num_val), '--size', '96'], osp.join(out, 'make_toy_dataset.log'))

    print('[2/2] smoke: open_clip ViT + FCN head (tools/train.py, tools/test.py)', flush=True)
    cfg = 'configs/examples/clip_vit_fcn_toy.py'
    work = osp.join(out, 'smoke')
    opts = ['--cfg-options', f'train_dataloader.dataset.data_root={data}',
            f'val_dataloader.dataset.data_root={data}', f'test_dataloader.dataset.data_root={data}',
            f'train_cfg.max_iters={args.iters}', f'train_cfg.val_interval={args.iters}',
            f'default_hooks.checkpoint.interval={args.iters}']
    ckpt = osp.join(work, f'iter_{args.iters}.pth')
    if not osp.isfile(ckpt):
        run([py, 'tools/train.py', cfg, '--work-dir', work, *opts], osp.join(out, 'train_smoke.log'))
    run([py, 'tools/test.py', cfg, ckpt, '--work-dir', osp.join(work, 'test'), *opts],
        osp.join(out, 'test_smoke.log'))
    metrics = sorted(glob.glob(osp.join(work, 'test', '*', '*.json')))[-1]
    miou = json.load(open(metrics))['mIoU']
    results = {'smoke_clip_vit_fcn': miou}
    write_json_atomic(results, osp.join(out, 'results.json'))
    print(json.dumps(results, indent=2))


if __name__ == '__main__':
    main()
