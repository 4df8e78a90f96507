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
                        'dir (the newest readable one); with a path, from that checkpoint')
    parser.add_argument('--allow-fresh-start', action='store_true',
                        help='with --resume: start from iteration 0 when the work dir holds no checkpoint '
                        '(without it, that is an error)')
    parser.add_argument('--amp', action='store_true',
                        help='mixed precision (AmpOptimWrapper, dtype from amp_dtype: bf16 where supported); GPU only')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. optim_wrapper.optimizer.lr=1e-4')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    set_local_rank(args)
    return args


def resolve_resume(resume: str, work_dir: str, allow_fresh_start: bool):
    """The checkpoint to resume from (``--resume`` / ``--resume PATH``), or None to start afresh.

    Without a path: the newest readable checkpoint of the work dir; unreadable newer ones (a run killed
    while writing) and a dangling ``last_checkpoint`` are passed over with a warning. No checkpoint at
    all is an error unless ``--allow-fresh-start``. A given path must be a readable checkpoint.
    """
    from mmseg_ovs.engine.resume_checkpoint import (CheckpointUnreadable, check_checkpoint_readable,
                                                    find_resume_checkpoint)
    if resume != 'auto':
        try:
            check_checkpoint_readable(resume)
        except CheckpointUnreadable as e:
            raise SystemExit(f'error: --resume {resume}: {e}')
        return resume
    checkpoint, skipped = find_resume_checkpoint(work_dir)
    for reason in skipped:
        print_log(f'--resume: passing over {reason}', logger='current', level=logging.WARNING)
    if checkpoint is None:
        what = f'no readable checkpoint ({len(skipped)} unreadable)' if skipped else 'no checkpoint'
        if not allow_fresh_start:
            raise SystemExit(f'error: --resume: {what} in the work dir {work_dir!r}. Check --work-dir, or pass '
                             '--allow-fresh-start to start training from iteration 0.')
        print_log(f'--resume: {what} in {work_dir!r}; starting from iteration 0 (--allow-fresh-start).',
                  logger='current', level=logging.WARNING)
        return None
    if skipped:
        print_log(f'--resume: falling back to {checkpoint}', logger='current', level=logging.WARNING)
    return checkpoint


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    if args.amp:
        # AmpOptimWrapper with the config's amp_dtype (bf16 where supported); clear refusal on CPU
        from mmseg_ovs.engine.amp import enable_amp
        if cfg.optim_wrapper.get('type') == 'AmpOptimWrapper':
            print_log('AMP training is already enabled in your config.', logger='current',
                      level=logging.WARNING)
        enable_amp(cfg)
    if args.resume is not None:
        checkpoint = resolve_resume(args.resume, cfg.work_dir, args.allow_fresh_start)
        cfg.resume = checkpoint is not None
        cfg.load_from = checkpoint
    runner = build_runner(cfg)
    runner.train()


if __name__ == '__main__':
    main()
