#!/usr/bin/env bash
# Idempotent environment set-up for mmseg_ovs.
#
#   bash tools/setup_env.sh            # creates/updates $MMSEG_OVS_VENV (default: ./.venv)
#
# A stamp file (hash of requirements.txt + this script) makes a second run a no-op.
# The first run compiles mmcv 2.1.0 with its ops (~10 min on 2 cores); pip caches the wheel,
# so later runs (and fresh clones on the same machine) reuse it in seconds.
#
# Works the same with and without a GPU:
# * torch/torchvision are the regular PyPI wheels, i.e. the CUDA build (its CUDA libraries come as
#   nvidia-* wheels, so only an NVIDIA driver is needed); on a machine without a GPU they run on CPU.
# * mmcv's ops are always compiled for CPU only, whatever CUDA toolkit the machine has: mmcv 2.1.0's
#   setup.py compiles its CUDA kernels iff torch.cuda.is_available() or FORCE_CUDA=1 (or a ROCm torch,
#   FORCE_MLU/FORCE_MPS/FORCE_NPU), so the build runs with the GPUs hidden (CUDA_VISIBLE_DEVICES="")
#   and FORCE_CUDA=0. No nvcc or CUDA headers are needed, the build takes the same time everywhere,
#   and the (pip-cached) wheel is the same on CPU and GPU machines. This project uses no mmcv CUDA op
#   (mmseg only needs `import mmcv.ops` to succeed); everything of ours runs on torch's CUDA kernels.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MMSEG_OVS_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.mmseg_ovs_stamp"
want="$(cat "$ROOT/requirements.txt" "$ROOT/tools/setup_env.sh" | sha256sum | cut -d' ' -f1)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi

log() { echo "[setup_env] $*"; }
start=$(date +%s)
[ -x "$VENV/bin/python" ] || { log "creating venv $VENV"; "$PY" -m venv "$VENV"; }
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@"; }

# 1. Build tooling: setuptools < 82 still ships pkg_resources (mmcv's setup and mmengine's
#    `mmseg::` base configs import it); ninja speeds up the mmcv compile.
pip install -q "setuptools<82" wheel ninja "numpy==2.2.6"

# 2. torch + torchvision: the regular registry builds. The machine's find-links directory offers a
#    CPU-only torch wheel that registry torchvision cannot load against, so hide it here.
#    The PyPI torch 2.13.0 wheel is built for CUDA 13.0 (NVIDIA driver >= 580). For an older driver,
#    point TORCH_INDEX_URL at a PyTorch wheel index of an older CUDA (e.g. .../whl/cu128), if it has 2.13.
log "installing torch/torchvision"
PIP_FIND_LINKS=" " pip install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple} \
  "torch==2.13.0" "torchvision==0.28.0" "setuptools<82"

# 3. mmcv 2.1.0 compiled with its ops (mmseg imports mmcv.ops, so mmcv-lite is not enough).
if ! "$VENV/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  log "building mmcv 2.1.0 with CPU ops (first time ~10 min on 2 cores; cached afterwards)"
  CUDA_VISIBLE_DEVICES="" FORCE_CUDA=0 MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}" PIP_FIND_LINKS=" " \
    pip install --no-build-isolation "mmcv==2.1.0"
fi

# 4. Everything else, pinned, then the plugin itself (editable).
log "installing the rest of requirements.txt"
PIP_FIND_LINKS=" " pip install -q -r "$ROOT/requirements.txt"
if [ -f "$ROOT/setup.py" ]; then
  PIP_FIND_LINKS=" " pip install -q --no-build-isolation --no-deps -e "$ROOT"
fi
"$VENV/bin/python" -c "import torch, torchvision, mmcv.ops, mmengine, mmseg, mmpretrain, open_clip, segment_anything, pycocotools, skimage; print('[setup_env] stack ok: torch', torch.__version__, '(CUDA build', torch.version.cuda, ')', 'mmcv', mmcv.__version__, 'mmseg', mmseg.__version__, 'open_clip', open_clip.__version__); print('[setup_env] device:', torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU only (no GPU visible)')"
echo "$want" > "$STAMP"
log "done in $(( $(date +%s) - start ))s"
