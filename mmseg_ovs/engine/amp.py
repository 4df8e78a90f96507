"""Mixed-precision training set-up: ``--amp`` -> mmengine's ``AmpOptimWrapper``.

The autocast dtype comes from the config (top-level ``amp_dtype``: ``'bfloat16'``, ``'float16'`` or
None) and defaults to bfloat16 where the GPU supports it (Ampere and newer), float16 otherwise.
bfloat16 has float32's exponent range, so it trains without loss scaling (a static scale of 1; the
wrapper still skips steps with non-finite gradients); float16 uses dynamic loss scaling.

Which computations stay in float32 under autocast is documented where they happen (see
:mod:`mmseg_ovs.utils.precision`).
"""
from typing import Optional

import torch

AMP_DTYPES = ('bfloat16', 'float16')


def default_amp_dtype() -> str:
    """'bfloat16' on GPUs that support it, else 'float16'."""
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return 'bfloat16'
    return 'float16'


def amp_optim_wrapper(optim_wrapper: dict, dtype: Optional[str] = None) -> dict:
    """Turn an ``OptimWrapper`` config into an ``AmpOptimWrapper`` config (a new dict).

    Args:
        optim_wrapper: the config's ``optim_wrapper`` (type ``OptimWrapper`` or already
            ``AmpOptimWrapper``, which is returned with its dtype filled in if missing).
        dtype: ``'bfloat16'`` / ``'float16'``; None -> :func:`default_amp_dtype`.
    """
    cfg = dict(optim_wrapper)
    kind = cfg.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper'):
        raise ValueError(f'--amp needs optim_wrapper.type OptimWrapper or AmpOptimWrapper, not {kind!r}')
    dtype = dtype or cfg.get('dtype') or default_amp_dtype()
    if isinstance(dtype, torch.dtype):
        dtype = str(dtype).replace('torch.', '')
    if dtype not in AMP_DTYPES:
        raise ValueError(f'amp dtype must be one of {AMP_DTYPES}, got {dtype!r}')
    if kind == 'OptimWrapper' or 'loss_scale' not in cfg:
        cfg['loss_scale'] = 1.0 if dtype == 'bfloat16' else 'dynamic'
    cfg.update(type='AmpOptimWrapper', dtype=dtype)
    return cfg


def enable_amp(cfg) -> None:
    """What ``tools/train.py --amp`` does to a config (in place).

    On CUDA the optimizer wrapper becomes an ``AmpOptimWrapper`` with the config's ``amp_dtype``
    (default: :func:`default_amp_dtype`). Without CUDA it stops with a clear message: mmengine's
    ``AmpOptimWrapper`` asserts a CUDA/NPU/MLU device, and CPU training runs in float32 (bfloat16
    autocast on CPU is tested, see tests/test_amp.py, but is not a training mode here).
    """
    if not torch.cuda.is_available():
        raise SystemExit("--amp needs a GPU: mmengine's AmpOptimWrapper supports CUDA/NPU/MLU only; "
                         'train without --amp on CPU')
    cfg.optim_wrapper = amp_optim_wrapper(cfg.optim_wrapper, cfg.get('amp_dtype'))
