"""Train a segmentor with the MMEngine runner.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp] [--cfg-options k=v ...]
    bash tools/dist_train.sh CONFIG GPUS [same args]
"""
import argparse
import logging

from mmengine.config import DictAction
from mmengine.logging import print_log

from _runner_utils import build_runner, load_config, set_local_rank


def parse_args():
    parser = argparse.ArgumentParser(description='Train a segmentor (mmseg_ovs)')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='directory for logs and checkpoints')
    parser.add_argument('--resume', nargs='?', const='auto', default=None,
                        help='resume training: without a value, from the latest checkpoint in the work '
                        'dir; with a path, from that checkpoint')
    parser.add_argument('--amp', action='store_true', help='automatic mixed precision training')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    set_local_rank(args)
    return args


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        import torch
        if not torch.cuda.is_available():
            raise SystemExit('--amp needs a GPU: mmengine\'s AmpOptimWrapper supports CUDA/NPU/MLU/MUSA '
                             'only; train without --amp on CPU')
        optim_wrapper = cfg.optim_wrapper.type
        if optim_wrapper == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        else:
            assert optim_wrapper == 'OptimWrapper', (
                f'`--amp` is only supported when the optimizer wrapper is `OptimWrapper`, not {optim_wrapper}')
            cfg.optim_wrapper.type = 'AmpOptimWrapper'
            cfg.optim_wrapper.loss_scale = 'dynamic'
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
