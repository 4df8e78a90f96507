"""TF32 and cuDNN-benchmark settings of the official runs, as a config key.

- PixelCLIP (``train_net.py``): ``torch.set_float32_matmul_precision("high")`` (TF32 matmuls) and
  ``CUDNN_BENCHMARK: True``; cuDNN convolutions use TF32 by torch's default.
- SegCLIP: torch 1.8.0, where ``torch.backends.cuda.matmul.allow_tf32`` and
  ``torch.backends.cudnn.allow_tf32`` both defaulted to True (matmul TF32 became opt-in in torch
  1.12); ``cudnn.benchmark`` off (``cudnn.deterministic=True``).

Only the CUDA flags are touched (``torch.backends.cuda.matmul.allow_tf32``,
``torch.backends.cudnn.allow_tf32`` / ``benchmark``), never ``torch.set_float32_matmul_precision``,
which since torch 2.9 also switches oneDNN's CPU matmuls (``torch.backends.mkldnn``): CPU results are
unchanged. The previous values are restored after the run.
"""
from typing import Dict, Optional

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

__all__ = ['CUDAPrecisionHook', 'set_cuda_precision', 'get_cuda_precision']


def get_cuda_precision() -> Dict:
    """Current ``{'tf32_matmul', 'tf32_cudnn', 'cudnn_benchmark'}`` (booleans)."""
    return dict(tf32_matmul=_read(torch.backends.cuda.matmul), tf32_cudnn=_read(torch.backends.cudnn),
                cudnn_benchmark=bool(torch.backends.cudnn.benchmark))


def _read(backend) -> bool:
    try:
        return bool(backend.allow_tf32)
    except RuntimeError:  # torch >= 2.9 after someone used the per-backend fp32_precision API
        target = backend.conv if backend is torch.backends.cudnn else backend
        return target.fp32_precision == 'tf32'


def set_cuda_precision(tf32_matmul: Optional[bool] = None, tf32_cudnn: Optional[bool] = None,
                       cudnn_benchmark: Optional[bool] = None) -> Dict:
    """Set the CUDA TF32 / cuDNN-benchmark flags (``None`` leaves one as it is); returns the old values.

    Uses the ``allow_tf32`` flags (the API of every torch version; on torch >= 2.9 they leave
    ``torch.backends.mkldnn`` (CPU) alone and keep ``torch.get_float32_matmul_precision()`` readable).
    """
    old = get_cuda_precision()
    if tf32_matmul is not None:
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32_matmul)
    if tf32_cudnn is not None:
        torch.backends.cudnn.allow_tf32 = bool(tf32_cudnn)
    if cudnn_benchmark is not None:
        torch.backends.cudnn.benchmark = bool(cudnn_benchmark)
    return old


@HOOKS.register_module()
class CUDAPrecisionHook(Hook):
    """Apply TF32 / cuDNN-benchmark flags for the run (train, val or test), restore them after.

    Args:
        tf32_matmul (bool | None): TF32 for float32 matmuls on CUDA (PixelCLIP's
            ``set_float32_matmul_precision("high")``; torch <= 1.11's default). None: unchanged.
        tf32_cudnn (bool | None): TF32 for cuDNN convolutions (torch's default True). None: unchanged.
        cudnn_benchmark (bool | None): ``torch.backends.cudnn.benchmark``; None leaves what
            ``env_cfg.cudnn_benchmark`` set.

    Example::

        custom_hooks = [dict(type='CUDAPrecisionHook', tf32_matmul=True, tf32_cudnn=True,
                             cudnn_benchmark=True)]   # PixelCLIP's official settings
    """
    priority = 'VERY_HIGH'

    def __init__(self, tf32_matmul: Optional[bool] = None, tf32_cudnn: Optional[bool] = None,
                 cudnn_benchmark: Optional[bool] = None):
        self.settings = dict(tf32_matmul=tf32_matmul, tf32_cudnn=tf32_cudnn, cudnn_benchmark=cudnn_benchmark)
        self._saved = None

    def before_run(self, runner) -> None:
        self._saved = set_cuda_precision(**self.settings)
        state = get_cuda_precision()
        print_log(f'CUDA precision: TF32 matmul={state["tf32_matmul"]}, TF32 cuDNN={state["tf32_cudnn"]}, '
                  f'cudnn.benchmark={state["cudnn_benchmark"]}'
                  + ('' if torch.cuda.is_available() else ' (no CUDA: no effect)'), logger='current')

    def after_run(self, runner) -> None:
        if self._saved is not None:
            set_cuda_precision(**self._saved)
            self._saved = None
