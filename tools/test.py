"""Evaluate a checkpoint with the MMEngine runner (mIoU etc. from the config's test_evaluator).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR] [--show-dir DIR] [--cfg-options ...]
    bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [same args]
"""
import argparse
import os

from mmengine.config import DictAction

from _runner_utils import build_runner, guard_evaluation, load_config, set_local_rank, strip_training
from mmseg_ovs.engine.evaluation_guards import EvaluationGuardError


def parse_args():
    parser = argparse.ArgumentParser(description='Test (evaluate) a segmentor (mmseg_ovs)')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='directory for the evaluation metrics')
    parser.add_argument('--out', help='directory in which to save the predicted label maps')
    parser.add_argument('--show', action='store_true', help='show prediction results')
    parser.add_argument('--show-dir', help='directory where painted images are saved')
    parser.add_argument('--wait-time', type=float, default=2, help='the interval of show (s)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. model.test_cfg.bg_thresh=0.5')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none')
    parser.add_argument('--tta', action='store_true',
                        help="test-time augmentation (flip x scales, OVSTTAModel, mmseg's SegTTAModel for any vocabulary size; the config's tta_pipeline)")
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    set_local_rank(args)
    return args


def enable_visualization(cfg, args):
    """Turn on the config's SegVisualizationHook for --show / --show-dir."""
    hooks = cfg.setdefault('default_hooks', {})
    hook = hooks.setdefault('visualization', dict(type='SegVisualizationHook'))
    hook['draw'] = True
    if args.show:
        hook['show'] = True
        hook['wait_time'] = args.wait_time
    if args.show_dir:
        cfg.visualizer['save_dir'] = args.show_dir
        hook['interval'] = 1  # paint every test image, not every 50th batch


def main():
    args = parse_args()
    cfg = load_config(args.config, args.cfg_options, args.work_dir, args.launcher)
    cfg.load_from = None  # loaded by guard_evaluation, which refuses a partial load
    strip_training(cfg)
    if args.show or args.show_dir:
        enable_visualization(cfg, args)
    if args.tta:
        # flip x multi-scale through OVSTTAModel (mmseg's SegTTAModel, any class count) (tta_pipeline: configs/_base_/protocols/*)
        if 'tta_pipeline' not in cfg or 'tta_model' not in cfg:
            raise SystemExit(f'--tta: {args.config} defines no tta_pipeline/tta_model (the protocol bases '
                             'configs/_base_/protocols/*_eval.py and default_runtime.py define them)')
        cfg.test_dataloader.dataset.pipeline = cfg.tta_pipeline
        cfg.tta_model.module = cfg.model
        cfg.model = cfg.tta_model
    if args.out is not None:
        cfg.test_evaluator['output_dir'] = args.out
        cfg.test_evaluator['keep_results'] = True
        os.makedirs(args.out, exist_ok=True)
    runner = build_runner(cfg)
    try:
        guard_evaluation(runner, args.checkpoint)
    except EvaluationGuardError as e:
        raise SystemExit(f'error: {e}')
    runner.test()


if __name__ == '__main__':
    main()
