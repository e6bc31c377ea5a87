#!/usr/bin/env bash
# The CUDA backend's GPU slices and graph replay, checked and timed on the GPU
# machine in one call of about 7 minutes (each stage has a time limit):
#   source .whl/gpu-env.sh && bash benchmarks/gpu_checks.sh
# 1. tests: tests/test_cuda.py (slices, graphs, the plugin) with the
#    driverless test_cuda_slices.py and test_replay.py, CLNN_DEVICES=cuda;
#    then every zoo model split 50/50 between PoCL and a 16-SM slice against
#    onnxruntime (tests/test_zoo.py)
# 2. per-run cost: NVIDIA's OpenCL against the CUDA plugin command by command
#    and replayed as a graph (timed and untimed), lenet5/fcnn/resnet18
# 3. benchmarks/edge_balance.py on lenet5 and squeezenet, batches 1 and 16,
#    slices of 8 and 32 SMs and the whole GPU, under a budget
# Logs, JSON, markdown and the plot go to $OUT; a summary is printed last.
set -uo pipefail
OUT=${OUT:-/tmp/clnn-out}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
export POCL_CACHE_DIR=/tmp/pocl-cache CLNN_CACHE_DIR=/tmp/clnn-cache PYTHONUNBUFFERED=1
# an uninstalled checkout has no entry points: write them beside the sources
# so that the CUDA plugin is found (tox -e cuda does the same)
python3 -c "import setuptools; setuptools.setup()" -q egg_info >/dev/null 2>&1
python3 -c "import cuda.bindings, torch; print('cuda-bindings', cuda.bindings.__version__, '| torch', torch.__version__)"
started=$SECONDS
stage() { echo; echo "=== $1 ($((SECONDS - started)) s)"; }

stage "devices"
python3 -m clnn devices --devices "portable;cuda:sms=4;cuda:sms=16;cuda" 2>&1 | tee "$OUT/devices.txt"

stage "1a tests: CUDA plugin, slices, graphs"
CLNN_DEVICES=cuda timeout 240 python3 -m pytest -q -rs -p no:cacheprovider --junitxml="$OUT/junit-cuda.xml" \
  tests/test_cuda.py tests/test_cuda_slices.py tests/test_replay.py > "$OUT/tests-cuda.log" 2>&1
echo "exit status $?"; tail -n 25 "$OUT/tests-cuda.log"

stage "1b tests: the zoo split between PoCL and a 16-SM slice"
CLNN_DEVICES="portable;cuda:sms=16" CLNN_TEST_MIN_DEVICES=2 timeout 150 python3 -m pytest -q -p no:cacheprovider \
  tests/test_zoo.py -k clnn_matches > "$OUT/tests-zoo-slice.log" 2>&1
echo "exit status $?"; tail -n 8 "$OUT/tests-zoo-slice.log"

stage "2 per-run cost: OpenCL against the CUDA plugin"
timeout 120 python3 benchmarks/cuda_overhead.py --json "$OUT/cuda-overhead.json" 2>&1 | tee "$OUT/cuda-overhead.txt"

stage "3 edge balance (2 models)"
timeout 270 python3 benchmarks/edge_balance.py --models lenet5,squeezenet --batches 1,16 --sms 8,32,all --runs 5 \
  --budget 180 --output "$OUT/edge-balance-quick" > "$OUT/edge-balance-quick.log" 2>&1
echo "exit status $?"; grep -E "SMs:|torch|budget|rows in|Error" "$OUT/edge-balance-quick.log" | tail -n 20

stage "summary"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/tests-cuda.log" | tail -n 12
grep -E "passed|failed" "$OUT/tests-zoo-slice.log" | tail -n 1
cat "$OUT/cuda-overhead.txt" 2>/dev/null | head -n 8
cat "$OUT/edge-balance-quick.md" 2>/dev/null
echo "done in $((SECONDS - started)) s; files in $OUT"
