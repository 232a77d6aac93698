#!/usr/bin/env bash
# The GPU rows of the sampling benchmark (docs/sampling.md, "Benchmark") in one run that fits
# a short lease of one GPU: about 6-9 minutes on one H100/H200, each part under its own
# timeout so a slow part cannot starve the others. Runs from a source checkout with the
# machine's own python3 and torch (nothing installed: PYTHONPATH is the checkout).
#
#   bash scripts/device_bench_sample.sh            # numbers in $OUT (default out/device_bench)
#   PARTS="ffhq256_bf16 real_bf16" N_256=512 REPEATS=2 TOTAL_S=200 bash scripts/device_bench_sample.sh
#                                                  # a shorter lease: fewer, smaller parts, one deadline
#
# 1. the shipped world on the GPU, fp32 then bf16: (a) compute only, (b) end to end with the
#    encode threads, (c) the naive loop, G alone at batch 1..64, the heads alone;
# 2. ffhq256 with random weights and rgb + seg + sketch + landmark heads in bf16: (b) end to
#    end against the generator alone at the same batch (the target: >= 0.9);
# 3. ffhq256 and ffhq1024 compute only in bf16 at batch 1, 8, 32, each in its own process,
#    with the GPU's peak memory.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/device_bench}
PY=${PYTHON:-python3}
WORKERS=${WORKERS:-$(( $(nproc) > 2 ? $(nproc) - 2 : 1 ))}  # encode threads; two cores for the device loop
mkdir -p "$OUT"
END=$(( $(date +%s) + ${TOTAL_S:-100000} ))  # no part starts or runs past TOTAL_S seconds from here
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
BENCH="$PY scripts/bench_sample.py --device ${DEVICE:-cuda}"

# Five files in all (a device lease brings back at most eight): bench.log and one JSON per part.
LOG="$OUT/bench.log"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c "import torch; print('torch', torch.__version__)"; } \
  > "$LOG" 2>&1

part() {  # part NAME SECONDS ARGS...: one bench run; its output appended to bench.log, its numbers in NAME.json
  local name=$1 seconds=$2; shift 2
  local left=$((END - $(date +%s)))
  [ "$left" -lt "$seconds" ] && seconds=$left
  if [ "$seconds" -lt 10 ]; then echo "== $name skipped: TOTAL_S spent" | tee -a "$LOG"; return; fi
  echo "== $name" | tee -a "$LOG"
  timeout "$seconds" $BENCH "$@" --json-out "$OUT/$name.json" > "$OUT/.part.log" 2>&1
  local status=$?
  cat "$OUT/.part.log" >> "$LOG"
  echo "   exit $status ($(grep -E '^\(b\) end to end / generator only|^roofline [0-9]|^real size' "$OUT/.part.log" | tr '\n' ' '))"
  rm -f "$OUT/.part.log"
}

# PARTS picks and orders the parts; N_SHIPPED, N_256 and REPEATS shrink them for a shorter lease.
PARTS=${PARTS:-shipped_fp32 shipped_bf16 ffhq256_bf16 real_bf16}
REPEATS=${REPEATS:-3}
SHIPPED="--world domains --domains rgb,seg,sketch,landmark --n ${N_SHIPPED:-4096} --n-naive 64 --batch-size 64
  --workers $WORKERS --g-batches 1,8,32,64 --head-batches 64 --probe-size 8192 --repeats $REPEATS"
for p in $PARTS; do
  case $p in
  shipped_fp32) part shipped_fp32 120 $SHIPPED;;
  shipped_bf16) part shipped_bf16 120 $SHIPPED --dtype bfloat16;;
  ffhq256_bf16) part ffhq256_bf16 150 --preset ffhq256 --domains rgb,seg,sketch,landmark --dtype bfloat16 --n ${N_256:-1024} \
    --n-naive 8 --batch-size 32 --workers "$WORKERS" --g-batches 1,8,32 --head-batches 8,32 --probe-size 8192 --repeats $REPEATS;;
  real_bf16) part real_bf16 150 --n 0 --probe-repeats 0 --real-size --real-presets ffhq256,ffhq1024 --real-batches 1,8,32 \
    --dtype bfloat16;;
  *) echo "unknown part $p (shipped_fp32 shipped_bf16 ffhq256_bf16 real_bf16)" >&2; exit 2;;
  esac
done
