"""Evaluate one method on every benchmark and write a Markdown + CSV mIoU table.

    python tools/benchmark_all.py configs/benchmarks/segclip [--checkpoint CKPT] [--gpus N | --device cpu]
        [--benchmarks voc21 context60 ...] [--data-root /datasets] [--work-dir DIR]
        [--cfg-options model.bg_thresh=0.7 ...] [--out-md results.md] [--out-csv results.csv]

``configs`` is a folder holding one ``*_<bench>.py`` per benchmark, or a path template with
``{bench}``. Benchmarks run in the field's order (voc21 context60 coco_object voc20 cityscapes
context59 ade150 coco_stuff171), each through ``Runner.from_cfg(cfg).test()`` in this process;
``--gpus N`` (N > 1) relaunches this script under ``torch.distributed.run`` with one process per
GPU. A benchmark whose data is absent is reported as ``missing: <path>`` (not a crash); any other
failure is reported as ``error: ...`` and makes the exit status 1. ``--data-root`` replaces the
leading ``data/`` of every config's ``data_root``.
"""
import argparse
import csv
import glob
import io
import os
import os.path as osp
import subprocess
import sys
import time

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

BENCHMARKS = ('voc21', 'context60', 'coco_object', 'voc20', 'cityscapes', 'context59', 'ade150',
              'coco_stuff171')


def parse_args(argv=None):
    from mmengine.config import DictAction
    p = argparse.ArgumentParser(description='Run every benchmark for one method',
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument('configs', help='folder of *_<bench>.py configs, or a path template with {bench}')
    p.add_argument('--checkpoint', help='checkpoint (omit for training-free models)')
    p.add_argument('--benchmarks', nargs='+', default=None, help=f'subset of {BENCHMARKS}')
    p.add_argument('--data-root', help='replace the leading "data/" of every data_root')
    p.add_argument('--work-dir', default='work_dirs/benchmark_all')
    p.add_argument('--gpus', type=int, default=1, help='>1: one process per GPU (torch.distributed.run)')
    p.add_argument('--device', choices=['auto', 'cpu'], default='auto', help='cpu: hide CUDA devices')
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, help='applied to every benchmark config')
    p.add_argument('--out-md', help='Markdown table (default: <work-dir>/results.md)')
    p.add_argument('--out-csv', help='CSV table (default: <work-dir>/results.csv)')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return p.parse_args(argv)


def find_configs(configs: str, benchmarks):
    """{bench: config path or None}."""
    found = {}
    for bench in benchmarks:
        if '{bench}' in configs:
            path = configs.format(bench=bench)
            found[bench] = path if osp.isfile(path) else None
        else:
            hits = sorted(glob.glob(osp.join(configs, f'*_{bench}.py')))
            if len(hits) > 1:
                raise SystemExit(f'error: several configs for {bench} in {configs}: {hits}')
            found[bench] = hits[0] if hits else None
    return found


def remap_data_root(cfg, data_root: str):
    ds = cfg.test_dataloader.dataset
    old = ds.data_root
    if old.startswith('data/') or old == 'data':
        ds.data_root = osp.join(data_root, old[len('data/'):])


def missing_input(cfg):
    """First missing path of the test dataset (images folder, annotations folder, split file), or None."""
    ds = cfg.test_dataloader.dataset
    root = ds.get('data_root', '') or ''
    prefix = ds.get('data_prefix', {}) or {}
    paths = [osp.join(root, prefix[k]) for k in ('img_path', 'seg_map_path') if prefix.get(k)]
    if ds.get('ann_file'):
        paths.append(osp.join(root, ds.ann_file))
    for path in paths:
        if not osp.exists(path):
            return path
    return None


def run_benchmark(bench, config, args):
    """Returns a result row dict."""
    from _runner_utils import build_runner, guard_evaluation, load_config, strip_training
    row = dict(benchmark=bench, config=config or '', mIoU=None, aAcc=None, mAcc=None, seconds=None,
               status='')
    if config is None:
        row['status'] = f'missing: no *_{bench}.py config in {args.configs}'
        return row
    cfg = load_config(config, args.cfg_options, osp.join(args.work_dir, bench), args.launcher)
    strip_training(cfg)
    if args.data_root:
        remap_data_root(cfg, args.data_root)
    miss = missing_input(cfg)
    if miss is not None:
        row['status'] = f'missing: {miss}'
        return row
    cfg.load_from = None  # loaded by guard_evaluation, which refuses a partial load
    start = time.time()
    try:
        runner = build_runner(cfg)
        guard_evaluation(runner, args.checkpoint)  # class count and complete checkpoint
        metrics = runner.test()
    except Exception as e:  # reported in the table; the exit status says something failed
        row['status'] = f'error: {type(e).__name__}: {e}'.replace('\n', ' ')[:300]
        return row
    row['seconds'] = round(time.time() - start, 1)
    for key in ('mIoU', 'aAcc', 'mAcc'):
        if key in metrics:
            row[key] = float(metrics[key])
    row['status'] = 'ok' if row['mIoU'] is not None else f'error: no mIoU in {sorted(metrics)}'
    return row


def _fmt(v):
    return '' if v is None else f'{v:.2f}'


def summarize(rows):
    done = [r['mIoU'] for r in rows if r['mIoU'] is not None]
    mean = sum(done) / len(done) if done else None
    return mean, len(done)


def to_markdown(rows, title: str) -> str:
    mean, n = summarize(rows)
    lines = [f'### {title}', '', '| benchmark | mIoU | aAcc | mAcc | time (s) | status |',
             '|---|---:|---:|---:|---:|---|']
    for r in rows:
        lines.append(f"| {r['benchmark']} | {_fmt(r['mIoU'])} | {_fmt(r['aAcc'])} | {_fmt(r['mAcc'])} | "
                     f"{'' if r['seconds'] is None else r['seconds']} | {r['status']} |")
    lines.append(f'| **mean** ({n}/{len(rows)}) | {_fmt(mean)} | | | | |')
    return '\n'.join(lines) + '\n'


def to_csv(rows) -> str:
    buf = io.StringIO()
    fields = ['benchmark', 'mIoU', 'aAcc', 'mAcc', 'seconds', 'status', 'config']
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator='\n')
    writer.writeheader()
    for r in rows:
        writer.writerow({k: r[k] for k in fields})
    mean, n = summarize(rows)
    writer.writerow(dict(benchmark='mean', mIoU='' if mean is None else round(mean, 4), aAcc='', mAcc='',
                         seconds='', status=f'{n}/{len(rows)} benchmarks', config=''))
    return buf.getvalue()


def _write(text: str, path: str):
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    tmp = f'{path}.tmp{os.getpid()}'
    with open(tmp, 'w') as f:
        f.write(text)
    os.replace(tmp, path)


def relaunch_distributed(args, argv):
    """Re-run this script with one process per GPU."""
    port = os.environ.get('PORT', '29500')
    rest, skip = [], False
    for a in argv:  # drop "--gpus N" / "--gpus=N"
        if skip:
            skip = False
        elif a == '--gpus':
            skip = True
        elif not a.startswith('--gpus='):
            rest.append(a)
    cmd = [sys.executable, '-m', 'torch.distributed.run', f'--nproc_per_node={args.gpus}',
           f'--master_port={port}', osp.abspath(__file__)] + rest
    cmd += ['--launcher', 'pytorch']
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    return subprocess.call(cmd, env=env)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.device == 'cpu':
        os.environ['CUDA_VISIBLE_DEVICES'] = ''
    if args.gpus > 1 and args.launcher == 'none':
        return relaunch_distributed(args, argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    benchmarks = args.benchmarks or list(BENCHMARKS)
    unknown = [b for b in benchmarks if b not in BENCHMARKS]
    if unknown:
        raise SystemExit(f'error: unknown benchmarks {unknown}; choose from {BENCHMARKS}')
    configs = find_configs(args.configs, benchmarks)
    rows = []
    for i, bench in enumerate(benchmarks, 1):
        print(f'[benchmark_all] ({i}/{len(benchmarks)}) {bench}: {configs[bench] or "no config"}', flush=True)
        row = run_benchmark(bench, configs[bench], args)
        print(f'[benchmark_all] ({i}/{len(benchmarks)}) {bench}: mIoU={_fmt(row["mIoU"]) or "-"} '
              f'{row["status"]}', flush=True)
        rows.append(row)
    from mmengine.dist import barrier, get_rank, is_distributed
    if get_rank() == 0:
        title = f'{args.configs}' + (f' @ {args.checkpoint}' if args.checkpoint else '')
        md = to_markdown(rows, title)
        _write(md, args.out_md or osp.join(args.work_dir, 'results.md'))
        _write(to_csv(rows), args.out_csv or osp.join(args.work_dir, 'results.csv'))
        print(md, flush=True)
    if is_distributed():  # leave together: a rank exiting early can abort the others' gloo threads
        import torch.distributed as torch_dist
        barrier()
        torch_dist.destroy_process_group()
    return 1 if any(r['status'].startswith('error') for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
