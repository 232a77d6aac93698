#!/usr/bin/env bash
# The auto-decoder fine-tune of the built-in generator (docs/builtin.md, "Changing the synthesis")
# on one GPU in one short lease: thousands of faces, the refit mapping, and the reference
# segmenter's reading of G(z) on `validation` latents. Runs from a source checkout with the
# machine's own python3 and torch (nothing installed: PYTHONPATH is the checkout).
#
#   bash scripts/device_autodecoder.sh                      # files in $OUT (default out/device_autodecoder)
#   FACES=4096 BATCH=64 TRAIN_MIN=6 bash scripts/device_autodecoder.sh
#
# Training stops after TRAIN_MIN minutes (or at STEPS) with its checkpoint, export and refit
# mapping (`--max-minutes`); the run folder (RUN_DIR) resumes with the same command where it
# survives. What comes back is at most five files under 16 MiB each: this log, the run's
# stats.jsonl, the fidelity report, and the generator with the refit mapping in parts
# (`cat G_mapped.safetensors.part* > G_mapped.safetensors`).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-out/device_autodecoder}
PY=${PYTHON:-python3}
RUN=${RUN_DIR:-runs/device-autodecoder}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
LOG="$OUT/autodecoder.log"
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; $PY -c "import torch; print('torch', torch.__version__)"; } \
  > "$LOG" 2>&1

$PY scripts/finetune_synthesis_autodecoder.py --run-dir "$RUN" --faces "${FACES:-4096}" --batch-size "${BATCH:-64}" \
  --steps "${STEPS:-1000000}" --device "${DEVICE:-cuda}" --judge domains/segmenter.safetensors \
  --eval-every "${EVAL_EVERY:-1000}" --checkpoint-every "${EVAL_EVERY:-1000}" --max-minutes "${TRAIN_MIN:-6}" \
  --mapping-out "$RUN/G_mapped.safetensors" >> "$LOG" 2>&1
echo "== fine-tune exit $?" | tee -a "$LOG"
cp "$RUN/stats.jsonl" "$OUT/" 2>/dev/null
[ -f "$RUN/G_mapped.safetensors" ] || { echo "no generator written: see $LOG" | tee -a "$LOG"; exit 1; }

# G(z) through the refit mapping, judged on 500 validation latents (the number issue 16 tracks)
$PY scripts/eval_generator_fidelity.py --generator "$RUN/G_mapped.safetensors" --split validation --n 500 \
  --judge domains/segmenter.safetensors --blur-sigmas "" > "$OUT/fidelity.txt" 2>&1
echo "== fidelity exit $?" | tee -a "$LOG"
split -b 15M -d "$RUN/G_mapped.safetensors" "$OUT/G_mapped.safetensors.part"
tail -n 30 "$OUT/fidelity.txt"
