#!/usr/bin/env bash
# Runs stages of clnn's GPU-machine checks and benchmarks; logs go to $OUT.
# On the GPU machine (see README, "Testing on a machine without network"):
#   source .whl/gpu-env.sh && bash benchmarks/gpu_machine.sh devices tox ...
# Stages: devices, tox (nvidia, mixed, cuda), microbench, tiles, kernels (the
# GPU kernels and their variants against torch, benchmarks/gpu_kernels.py),
# coexec (CPU only, GPU only and 50/50 per zoo model, with traces), auto (the
# zoo against plan=auto), cuda (the zoo on CUDA beside NVIDIA's OpenCL), gpu_peers (torch
# cuDNN beside clnn on NVIDIA OpenCL and CUDA, about 6 minutes), cpu_peers
# (clnn on PoCL beside onnxruntime and, where its wheel is carried, OpenVINO),
# memory (peak RSS beside onnxruntime). The peer stages write $OUT/gpu-peers,
# $OUT/cpu-peers and $OUT/memory (.json, .md), the last two merged with the
# development machine's rows committed in benchmarks/results.
set -uo pipefail
OUT=${OUT:-/tmp/clnn-out}
mkdir -p "$OUT"
# the machine's own packages (numpy, onnx, onnxruntime, torch) for tox's venvs
SITE=$(python3 -c 'import numpy, os; print(os.path.dirname(os.path.dirname(numpy.__file__)))')
export PYTHONPATH="$PYTHONPATH:$SITE"
export POCL_CACHE_DIR=/tmp/pocl-cache
# an uninstalled checkout has no entry points: write them beside the sources
# (PYTHONPATH holds the checkout) so that the CUDA plugin is found
python3 -c "import setuptools; setuptools.setup()" -q egg_info >/dev/null 2>&1

stage_devices() { python3 -m clnn devices; }

# PYTEST_ARGS: extra pytest arguments for the tox stage
stage_tox() {
  python3 -m tox -e ${TOX_ENVS:-nvidia,mixed,cuda} -- -q --ignore=tests/test_packaging.py ${PYTEST_ARGS:-}
}

stage_microbench() {
  python3 -m clnn.microbench --devices nvidia --batch 16 --ops Conv,Gemm --runs 10 --json "$OUT/micro-nvidia-b16.json"
  python3 -m clnn.microbench --devices portable --batch 1 --ops Conv --runs 5 --json "$OUT/micro-pocl-b1.json"
}

stage_tiles() {
  for tiles in 64x64x16/4x4 128x128x8/8x8 128x64x16/8x4; do
    python3 -m clnn.microbench --devices nvidia --models vgg16,resnet18 --batch 16 --ops Conv --runs 5 \
      --tune "conv_tiles=$tiles,winograd=0"
  done
}

stage_kernels() { python3 benchmarks/gpu_kernels.py --json "$OUT/gpu-kernels.json"; }

stage_coexec() {
  for model in lenet5 fcnn alexnet vgg16 squeezenet resnet18; do
    for batch in 1 16; do
      python3 -m clnn bench "$model" --batch "$batch" --devices "portable;nvidia" --plan 0.5,0.5 --runs 10 \
        $( [ "$model-$batch" = alexnet-16 ] && echo --trace "$OUT/trace-alexnet-b16.json" ) | sed -n '1,4p'
    done
  done
}

stage_auto() {
  python3 -m clnn bench --zoo --batches 1,16 --devices "portable;nvidia" --runs 10 --output "$OUT/zoo-auto"
}

stage_cuda() {
  for model in lenet5 fcnn alexnet vgg16 squeezenet resnet18; do
    for batch in 1 16; do
      python3 -m clnn bench "$model" --batch "$batch" --devices "nvidia;cuda" --runs 10 | sed -n '1,3p'
    done
  done
}

# the zoo's ONNX files, exported once for every peer stage (resnet50 and
# mobilenet_v2 are in the zoo now, with the CoDL networks)
PEERS_ONNX=/tmp/peers-onnx

stage_gpu_peers() {
  python3 benchmarks/gpu_peers.py --machine gpu --workdir "$PEERS_ONNX" --output "$OUT/gpu-peers"
}

stage_cpu_peers() {
  cp benchmarks/results/cpu-peers.json "$OUT/cpu-peers.json"
  python3 benchmarks/cpu_peers.py --machine gpu --workdir "$PEERS_ONNX" --output "$OUT/cpu-peers"
}

stage_memory() {
  cp benchmarks/results/memory.json "$OUT/memory.json"
  python3 benchmarks/cpu_peers.py --memory --machine gpu --workdir "$PEERS_ONNX" \
    --memory-output "$OUT/memory"
}

for stage in "$@"; do
  echo "=== $stage $(date +%T)"
  "stage_$stage" 2>&1 | tee "$OUT/$stage.log"
done
