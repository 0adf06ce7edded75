#!/usr/bin/env bash
# The GPU check (issue 6, `--device cuda`), as one script for a machine with a CUDA GPU, torch
# built with CUDA and attnad's dependencies importable. In order, each under its own time limit,
# so that a slow step cannot take the others' results with it:
#   1. tests/test_cuda.py: GPU-trained models score like the CPU (skipped where there is no GPU);
#   2. benchmarks/speed.py on 10M rows x 32 columns with --device cuda: score throughput against
#      the Parquet read floor and the read+write floor on that machine, IsolationForest on all
#      cores, and peak RSS scoring 1M vs 4M rows;
#   3. the whole test suite with the default device, which is the GPU there.
#     bash benchmarks/gpu.sh [OUT_DIR]      # from the repository root; writes speed_gpu_10m.json
set -u
out=${1:-benchmarks/results}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, pandas, pyarrow, pydantic, typer, os; print('torch', torch.__version__,
torch.cuda.get_device_name(0), '| pandas', pandas.__version__, '| pyarrow', pyarrow.__version__,
'| pydantic', pydantic.__version__, '| typer', typer.__version__, '| cpus', os.cpu_count())"
echo "== 1. CUDA tests"
timeout 90 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tail -15
echo "== 2. speed, 10M rows, --device cuda"
timeout 400 python3 benchmarks/speed.py --rows 10000000 --train-rows 1000000 --device cuda \
    --threads "$(nproc)" --rss-rows 1000000,4000000 --rss-set train.max_steps=100 \
    --workdir "${TMPDIR:-/tmp}/attnad-speed-gpu" --out "$out/speed_gpu_10m.json"
echo "== 3. whole suite, default device"
workers=$(python3 -c "import xdist" 2>/dev/null && echo "-n $(( $(nproc) > 12 ? 12 : $(nproc) ))")
timeout 110 python3 -m pytest -q -x -p no:cacheprovider $workers 2>&1 | tail -15
