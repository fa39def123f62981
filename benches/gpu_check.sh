#!/usr/bin/env bash
# The GPU checks in one run, on a machine with a GPU, CUDA 13 and PyTorch (nothing is built there):
# installs the prebuilt abi3 wheel, runs the GPU parity tests, then the GPU benchmark, and prints a
# short table last. Usage: benches/gpu_check.sh [WHEEL] (default: the one wheel in .gpu-wheel/).
# Logs go to $OUT when set (the lent device machine), else to /tmp.
set -uo pipefail
cd "$(dirname "$0")/.."
wheel=${1:-$(ls .gpu-wheel/rnnkit-*.whl | head -1)}
logs=${OUT:-/tmp}
export PYTHONUNBUFFERED=1
python3 -m pip install -q --no-deps --no-index --no-compile --target /tmp/rnnkit-site "$wheel" || exit 1
export PYTHONPATH=/tmp/rnnkit-site
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import rnnkit; print('rnnkit GPU status:', rnnkit.config.cuda_status())"
timeout 240 python3 -m pytest -q -p no:cacheprovider --tb=short --maxfail=25 tests/test_gpu.py 2>&1 | tee "$logs/gpu_tests.log" | grep -E "^(E  |FAILED|ERROR|[0-9]+ (passed|failed))" | cut -c1-300 | tail -60
tests=${PIPESTATUS[0]}
timeout 300 python3 benches/gpu.py "${@:2}" 2>&1 | tee "$logs/gpu_bench.log"
echo "gpu tests exit status: $tests"
