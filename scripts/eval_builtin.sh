#!/usr/bin/env bash
# Measure the shipped default world on the held-out ToyFaces `test` split (seed 1000), which
# no training job reads. Writes JSON reports and grids under $OUT; EVAL.md quotes them.
#
#   bash scripts/eval_builtin.sh            # after scripts/build_default_world.sh data
#
# Candidates (a generator, a folder of anchors) are compared on the `validation` split, which
# choosing may read: SPLIT=validation GENERATOR=... ANCHORS=... OUT=... bash scripts/eval_builtin.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
SG=${SYNTHGEN:-.venv/bin/synthgen}
DATA=${DATA:-out/data}
OUT=${OUT:-out/eval}
ANCHORS=${ANCHORS:-domains}  # a folder of candidate anchors can be measured before it replaces domains/
GENERATOR=${GENERATOR:-domains/generator.safetensors}  # ... and so can a candidate generator (with its anchors)
SPLIT=${SPLIT:-test}  # the held-out paired renders every row reads: test for the table, validation to choose
N_PAIRS=${N_PAIRS:-300}
N_DOWNSTREAM=${N_DOWNSTREAM:-1000}  # for 10000, render 10,000 segmenter pairs first (N_ANCHOR=10000 ... data)
DOWNSTREAM_STEPS=${DOWNSTREAM_STEPS:-3000}  # where the real-trained net has converged (1,000 steps stop it at 0.62)
# The downstream arms beside the synthetic net: the real one is the same for every candidate
# (REAL= skips it); the teacher (G's photos labelled by the judge: TEACHER=domains/segmenter.safetensors)
# is what a new generator's photos are worth to any labeller.
REAL=${REAL-$DATA/segmenter}
TEACHER=${TEACHER-}
mkdir -p "$OUT"

# 1. generator fidelity: G(z) against render_rgb(z)
$PY scripts/eval_generator_fidelity.py --generator "$GENERATOR" --split "$SPLIT" --n 1000 --judge domains/segmenter.safetensors --grid "$OUT/generator_grid.png" | tee "$OUT/generator.json"

# 2. translation between every pair of built-in domains (seg -> rgb also: faithfulness by the reference segmenter)
$PY scripts/bench_eval_translation.py --generator "$GENERATOR" --anchors "$ANCHORS" \
  --pairs "$DATA/$SPLIT" --segmenter domains/segmenter.safetensors --n "$N_PAIRS" --out "$OUT/translation" \
  | tee "$OUT/translation.txt"

# reconstruction through the anchor: seg -> G -> seg (the fit objective, on unseen masks)
$SG eval translate --from seg --to seg --pairs "$DATA/$SPLIT" --generator "$GENERATOR" \
  --anchors "$ANCHORS" --n "$N_PAIRS" --out "$OUT/translation" > "$OUT/seg_reconstruction.txt"

# inversion through the rgb anchor: rgb -> G -> rgb (is a held-out photo recognisable?)
$SG eval translate --from rgb --to rgb --pairs "$DATA/$SPLIT" --generator "$GENERATOR" \
  --anchors "$ANCHORS" --n "$N_PAIRS" --out "$OUT/translation" > "$OUT/rgb_inversion.txt"

# 3. exact synthetic label accuracy of `synthgen sample` output
$SG sample --n "$N_DOWNSTREAM" --domains rgb,seg,landmark --generator "$GENERATOR" --anchors "$ANCHORS" --out "$OUT/sampled" --no-progress
$SG eval labels "$OUT/sampled" --out "$OUT/labels.json" > /dev/null
# the anchor on its own: the sampled labels against the reference segmenter's parsing of the sampled photos
$SG eval consistency "$OUT/sampled" --landmark-judge domains/landmark_detector.safetensors \
  --out "$OUT/consistency.json" > "$OUT/consistency.txt"
$PY scripts/judge_anchor_labels.py --anchor "$ANCHORS/seg.safetensors" --generator "$GENERATOR" --n 8 --seed 0 --picture "$OUT/labels_vs_judge.png" > /dev/null
$SG preview "$OUT/sampled" --n 16 --out "$OUT/sampled_preview.png"

# 4. downstream: the same segmenter trained on N synthetic vs N rendered ("real") pairs
$SG eval downstream --synthetic "$OUT/sampled" ${REAL:+--real "$REAL"} ${TEACHER:+--teacher "$TEACHER"} --test "$DATA/$SPLIT" \
  --n "$N_DOWNSTREAM" --steps "$DOWNSTREAM_STEPS" --out "$OUT/downstream.json"
