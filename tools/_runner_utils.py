"""Shared set-up for tools/train.py and tools/test.py (not a registry component)."""
import os
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
if ROOT not in sys.path:  # run from a clone without `pip install -e .`
    sys.path.insert(0, ROOT)

import torch  # noqa: E402
from mmengine.config import Config  # noqa: E402


def load_config(path: str, cfg_options=None, work_dir=None, launcher: str = 'none') -> Config:
    """Read a config, apply ``--cfg-options`` and the work dir, and pick the DDP backend.

    ``work_dir`` precedence: CLI > config > ``./work_dirs/<config stem>``. Without CUDA a distributed
    launch uses the gloo backend and a DDP wrapper without ``device_ids``, so ``dist_train.sh`` also
    runs on CPU-only machines.
    """
    import mmseg_ovs  # noqa: F401  registers components and the checkpoint allow-list

    cfg = Config.fromfile(path)
    cfg.launcher = launcher
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if work_dir is not None:
        cfg.work_dir = work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(path))[0])
    add_reliability_defaults(cfg)
    if launcher != 'none' and not torch.cuda.is_available():
        env_cfg = cfg.setdefault('env_cfg', {})
        env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
        if cfg.get('model_wrapper_cfg') is None:
            cfg.model_wrapper_cfg = dict(type='DeviceAwareDistributedDataParallel', broadcast_buffers=False,
                                         find_unused_parameters=cfg.get('find_unused_parameters', False))
    add_weights_only_checkpoint_hook(cfg)
    add_compile_hook(cfg)
    return cfg


def add_compile_hook(cfg: Config) -> None:
    """``compile_image_towers`` (config key; False by default, True or a dict of ``torch.compile``
    kwargs) -> ``CompileImageTowersHook`` in ``custom_hooks`` (mmseg_ovs/engine/compile_towers_hook.py)."""
    setting = cfg.get('compile_image_towers', False)
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not setting or any(isinstance(h, dict) and str(h.get('type')).endswith('CompileImageTowersHook')
                          for h in hooks):
        return
    hooks.append(dict(type='CompileImageTowersHook', enabled=setting))
    cfg.custom_hooks = hooks


DEFAULT_COLLECTIVE_TIMEOUT_S = 1800


def add_reliability_defaults(cfg: Config) -> None:
    """What every run gets unless its config says otherwise (README "Reliability"):

    * ``ExactResumeHook`` in ``custom_hooks``: RNG states in checkpoints, restored on resume;
    * ``AtomicCheckpointHook`` in place of MMEngine's ``CheckpointHook`` (same arguments): a kill while
      saving never leaves the work dir without a complete checkpoint;
    * ``BrokenSampleTallyHook``: the broken samples skipped, over all workers and ranks, logged per epoch;
    * a collective timeout (``env_cfg.dist_cfg.timeout``, seconds): a rank stuck in a collective
      whose peer is gone raises after this long instead of hanging.
    """
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(h, dict) and h.get('type') in ('ExactResumeHook', 'mmseg.ExactResumeHook')
               for h in hooks):
        hooks.append(dict(type='ExactResumeHook'))
    if not any(isinstance(h, dict) and str(h.get('type')).endswith('BrokenSampleTallyHook') for h in hooks):
        hooks.append(dict(type='BrokenSampleTallyHook'))
    cfg.custom_hooks = hooks
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint')
    if isinstance(checkpoint, dict) and checkpoint.get('type') in ('CheckpointHook', 'mmengine.CheckpointHook'):
        checkpoint['type'] = 'AtomicCheckpointHook'
    dist_cfg = cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
    dist_cfg.setdefault('timeout', DEFAULT_COLLECTIVE_TIMEOUT_S)


def install_worker_init(runner) -> None:
    """Give every dataloader of ``runner`` that has no ``worker_init_fn`` of its own the one that
    seeds as MMEngine's default and makes the workers die with their rank
    (``mmseg_ovs.engine.worker_init``). Must run before the dataloaders are built."""
    from mmseg_ovs.engine.worker_init import worker_init_with_parent_death

    for attr in ('_train_dataloader', '_val_dataloader', '_test_dataloader'):
        loader = getattr(runner, attr, None)
        if not isinstance(loader, dict) or 'worker_init_fn' in loader or not loader.get('num_workers'):
            continue
        loader['worker_init_fn'] = dict(
            type=worker_init_with_parent_death, num_workers=loader['num_workers'], rank=runner.rank,
            seed=runner.seed, parent_pid=os.getpid(),
            disable_subprocess_warning=loader.pop('disable_subprocess_warning', False))


def add_weights_only_checkpoint_hook(cfg: Config) -> None:
    """Every run writes checkpoints that need no allow-listed globals (``WeightsOnlyCheckpointHook``,
    issue 13: numpy / HistoryBuffer entries are encoded as plain values)."""
    hooks = list(cfg.get('custom_hooks', None) or [])
    if not any(isinstance(h, dict) and str(h.get('type')).endswith('WeightsOnlyCheckpointHook') for h in hooks):
        hooks.append(dict(type='WeightsOnlyCheckpointHook'))
    cfg.custom_hooks = hooks


def init_cpu_distributed(cfg: Config) -> None:
    """Start the gloo process group ourselves on CPU-only machines: mmengine's pytorch launcher
    calls ``torch.cuda.set_device`` unconditionally. The runner then finds it initialised."""
    import datetime

    import torch.distributed as dist

    if cfg.launcher != 'pytorch' or torch.cuda.is_available() or dist.is_initialized():
        return
    dist_cfg = dict(cfg.env_cfg.get('dist_cfg', {}))
    timeout = dist_cfg.get('timeout')
    kwargs = dict(timeout=datetime.timedelta(seconds=timeout)) if timeout else {}
    dist.init_process_group(backend='gloo', **kwargs)


TRAINING_KEYS = ('train_dataloader', 'train_cfg', 'train_pipeline', 'optim_wrapper', 'param_scheduler',
                 'val_dataloader', 'val_cfg', 'val_evaluator', 'auto_scale_lr')


def strip_training(cfg: Config) -> None:
    """Drop the training/validation parts a method config carries before testing: the test runner
    does not use them, but would build the training data lazily (``runner.iter`` in the visualisation
    hook), and MMEngine pretty-prints the whole config several times per runner."""
    for key in TRAINING_KEYS:
        cfg.pop(key, None)


def build_runner(cfg: Config):
    from mmengine.registry import RUNNERS
    from mmengine.runner import Runner

    init_cpu_distributed(cfg)
    runner = RUNNERS.build(cfg) if 'runner_type' in cfg else Runner.from_cfg(cfg)
    install_worker_init(runner)
    return runner


def guard_evaluation(runner, checkpoint=None) -> None:
    """Refuse a test whose model's class count differs from the test dataset's, then load ``checkpoint``
    (if given) and refuse it when it leaves model parameters uninitialised
    (``mmseg_ovs.engine.evaluation_guards``). Call with ``cfg.load_from=None``, before ``runner.test()``."""
    from mmseg_ovs.engine.evaluation_guards import check_class_count, load_checkpoint_for_evaluation

    check_class_count(runner.model, runner.test_dataloader.dataset)
    if checkpoint:
        load_checkpoint_for_evaluation(runner, checkpoint)


def set_local_rank(args) -> None:
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
