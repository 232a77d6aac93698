#!/usr/bin/env bash
# Rebuild the shipped default world from nothing: ToyFaces splits, the generator, the four
# anchors on disjoint splits, and the reference segmenter. Every stage resumes from its
# run folder, so rerunning after an interruption continues where it stopped.
#
#   FIT_STEPS=3000 bash scripts/build_default_world.sh [stage ...]
#
# Stages: data generator anchors snap refine segmenter (default: all, in that order). The generator
# stage is the shipped recipe and wants a CUDA GPU (about 16 minutes on one H100; see
# docs/builtin.md); the other stages run on CPU as well. `retarget` (not in the default list)
# moves the shipped anchors onto a fine-tuned generator, into a folder to measure before it
# replaces domains/: NEW_GENERATOR=runs/g.safetensors bash scripts/build_default_world.sh retarget.
# `autodecoder` (not in the default list either) makes such a generator from the shipped one: the
# synthesis fine-tuned as an auto-decoder, the mapping refit to ask for its faces' latents
# (docs/builtin.md, "Changing the synthesis"); `autodecoder retarget` chains the two.
# GENERATOR and ANCHORS_OUT point the anchors, snap and refine stages at another generator and
# another folder: a world fit from nothing on a candidate generator, measured before it replaces
# domains/ (RUNS=runs/autodecoder-world GENERATOR=runs/generator-autodecoder.safetensors
# ANCHORS_OUT=runs/autodecoder-world/anchors bash scripts/build_default_world.sh anchors snap, a
# fresh RUNS since fit refuses a run folder of another generator; then eval_builtin.sh with
# GENERATOR and ANCHORS set to them).
set -euo pipefail
cd "$(dirname "$0")/.."
SG=${SYNTHGEN:-.venv/bin/synthgen}
PY=${PYTHON:-.venv/bin/python}
DATA=${DATA:-out/data}
RUNS=${RUNS:-runs}
GENERATOR=${GENERATOR:-domains/generator.safetensors}  # the generator the anchors, snap and refine stages fit to
ANCHORS_OUT=${ANCHORS_OUT:-domains}  # where those stages write the anchors they ship
FIT_STEPS=${FIT_STEPS:-3000}
FIT_BATCH=${FIT_BATCH:-16}
FIT_LR=${FIT_LR:-5e-4}
# The built-in anchors land in z through G's frozen mapping, spread over the prior, with a
# BatchNorm-free regressor (docs/anchors.md, "Anchoring a small generator"). Every fit below
# states its anchoring on top of --recipe paper, as the shipped anchors were made before fit's
# default became the one-run `sampling` recipe (docs/anchors.md, "Recipes").
FIT_ANCHORING=${FIT_ANCHORING:---latent-space z --lambda-prior 3 --no-regressor-batch-norm}
# The rgb anchor is an encoder only: no regressor is trained at its latents, so it inverts
# photos in w+, which reconstructs them far better than one z (EVAL.md).
RGB_ANCHORING=${RGB_ANCHORING:---latent-space w+}
# Domains whose regressor reads the multi-resolution "pyramid" tap (docs/anchors.md, "Feature
# tap"): the parts' layout lives in G's 16-32 px features. (The recipe domains below take the
# recipe's tap, which is the pyramid on a StyleGAN2.)
PYRAMID_DOMAINS=${PYRAMID_DOMAINS:-seg landmark}
# Domains fitted in one run with fit's default recipe (`--recipe sampling`, docs/anchors.md
# "Recipes"; for masks: z + prior, pyramid tap, class balance, feature noise, part alignment from
# step 500, no cycle), RECIPE_STEPS steps, the learning rate cosine-annealed to RECIPE_LR_FINAL
# when set, calibrated and shipped as fit writes it. The shipped seg and sketch anchors are one
# such run each (seed 1); rgb and landmark are the paper-recipe fits below.
RECIPE_DOMAINS=${RECIPE_DOMAINS-seg sketch}  # no colon: RECIPE_DOMAINS= (empty) fits every domain the paper way
# 5,000 steps: the sketch run continued from 2,500 improved every translation that reads it
# on validation (docs/anchors.md, "A longer budget").
RECIPE_STEPS=${RECIPE_STEPS:-5000}
# The seg run goes on to 7,500 steps: from 2,500 to 5,000 and again to 7,500 its labels and the
# nets trained on them kept improving on validation (docs/anchors.md, "A longer budget"); 7,500
# is about 2.6 hours on one core, and with the snap stage about 3.2 CPU-hours for the domain.
# SEG_RECIPE_STEPS=5000 keeps it inside the 3 CPU-hour budget of a domain (about 2.4 hours with
# the snap stage) at a cost on validation: labels vs judge 0.548 -> 0.535, the U-Net on its
# samples 0.486 -> 0.475 over four net seeds (docs/anchors.md, "Within the 3-hour budget").
SEG_RECIPE_STEPS=${SEG_RECIPE_STEPS:-7500}
RECIPE_LR_FINAL=${RECIPE_LR_FINAL:-}
# fit --seed: whether a seg run finds the hair is chance at this budget; seed 1 did, seed 0 did
# not (docs/anchors.md, "Recipes"), and the same seed on another machine may not repeat it
RECIPE_SEED=${RECIPE_SEED:-1}
# fit --trials: the recipe's default for a mask (3 seeds of 1,000 steps, the one whose hair and
# other large classes follow G's photo continued; docs/anchors.md, "Which runs find the hair")
# picks such a seed without a judge. The shipped seg run is seed 1 alone: its trials' 2,000 more
# steps would take the 7,500-step fit past the 3 CPU-hour budget of a domain.
RECIPE_TRIALS=${RECIPE_TRIALS:-1}
# Recipe domains whose run is continued SNAP_STEPS more steps with fit --photo-snap 1 (the
# files' enclosed parts snapped onto G's photo at the encoder's latents before the loss) and
# part alignment from the first step: the seg labels read 0.528 -> 0.548 against the judge on
# 300 sampled latents of seed 123 (eyes 0.52 / 0.45 -> 0.69 / 0.62), and the U-Net on 10,000 of
# their samples 0.479 -> 0.486 on the validation pairs over four net seeds (docs/anchors.md,
# "Part snapping onto the photo"). The shipped seg anchor is the 7,500-step recipe run
# continued so; about 40 more minutes on one core.
SNAP_DOMAINS=${SNAP_DOMAINS-seg}  # no colon: SNAP_DOMAINS= ships the recipe runs as they are (a recipe domain only)
SNAP_STEPS=${SNAP_STEPS:-1500}
SNAP_ANCHORING="--photo-snap 1 --align-start 0"  # a snapped domain's own terms, in its snap run and when retargeted
# Domains whose first fit is refined on sampled latents (docs/anchors.md, "Labels where
# sampling reads"): class-balanced reconstruction plus the sampled-latent cycle, in continued
# runs of REFINE_STEPS (each a fresh optimizer, as the shipped seg anchor was made), the k-th
# with --feature-noise REFINE_NOISE[k], --align-radius REFINE_ALIGN[k] from step
# REFINE_ALIGN_START[k] (part alignment, docs/anchors.md) and, where REFINE_FINEST[k] is 1,
# --finest-head. Only the last run calibrates class frequencies, so each run continues the
# regressor as trained. The two-head candidate of docs/anchors.md ("Two heads", not shipped:
# its labels train a worse downstream net) is a sixth run: REFINE_STEPS="600 600 600 600 1200 600"
# REFINE_NOISE="0 0 2 2 2 2" REFINE_ALIGN="0 0 0 0 2 2" REFINE_ALIGN_START="0 0 0 0 0 100"
# REFINE_FINEST="0 0 0 0 0 1" (a fresh head learns the parts for 100 steps before alignment reads it).
# The previous shipped seg anchor (the six-run chain) is RECIPE_DOMAINS= REFINE_DOMAINS=seg.
REFINE_DOMAINS=${REFINE_DOMAINS-}  # no colon: empty by default; name a domain to refine it
REFINE_ANCHORING=${REFINE_ANCHORING:---class-balance 0.5 --lambda-cycle 1}
REFINE_STEPS=${REFINE_STEPS:-600 600 600 600 1200}
REFINE_NOISE=${REFINE_NOISE:-0 0 2 2 2}
REFINE_ALIGN=${REFINE_ALIGN:-0 0 0 0 2}
REFINE_ALIGN_START=${REFINE_ALIGN_START:-0 0 0 0 0}
REFINE_FINEST=${REFINE_FINEST:-0 0 0 0 0}
# Mask domains whose final anchor records the photo refinement of its large classes (fit
# --photo-refine, docs/anchors.md "Photo refinement"; measured on validation, not shipped: none).
PHOTO_REFINE_DOMAINS=${PHOTO_REFINE_DOMAINS:-}
N_ANCHOR=${N_ANCHOR:-5000}
# autodecoder: faces with a latent of their own, steps, and the threads of its one process (CUDA when visible)
AUTODECODER_FACES=${AUTODECODER_FACES:-256}
AUTODECODER_STEPS=${AUTODECODER_STEPS:-800}
AUTODECODER_THREADS=${AUTODECODER_THREADS:-2}
AUTODECODER_OUT=${AUTODECODER_OUT:-$RUNS/generator-autodecoder.safetensors}
# retarget: each shipped anchor warm-starts a fit on NEW_GENERATOR (same shapes) with its own
# anchoring (a refined domain: its refine terms and last feature noise), calibrated as fit does.
RETARGET_STEPS=${RETARGET_STEPS:-300}
RETARGET_DOMAINS=${RETARGET_DOMAINS:-rgb seg sketch landmark}
RETARGET_OUT=${RETARGET_OUT:-$RUNS/retarget}
# Unrefined domains whose retarget adds the sampled-latent cycle: without it the sketch
# encoder drifted from the latents other domains land on (sketch -> rgb SSIM 0.383 -> 0.348
# on validation; with it 0.400).
RETARGET_CYCLE_DOMAINS=${RETARGET_CYCLE_DOMAINS:-sketch}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}  # one thread per process: several run side by side
stages=${*:-data generator anchors snap refine segmenter}
for d in $RECIPE_DOMAINS; do  # one recipe run is the domain's anchor: nothing to refine after it
  case " $REFINE_DOMAINS " in *" $d "*) echo "$d is in RECIPE_DOMAINS and REFINE_DOMAINS: set REFINE_DOMAINS without it" >&2; exit 2;; esac
done
mkdir -p "$RUNS"

seed_of() {  # the ToyFaces split seeds (synthgen/toyfaces/splits.py)
  case $1 in rgb) echo 1;; seg) echo 2;; sketch) echo 3;; landmark) echo 4;; segmenter) echo 5;; validation) echo 6;; test) echo 1000;; esac
}

is_recipe_domain() { case " $RECIPE_DOMAINS " in *" $1 "*) return 0;; *) return 1;; esac; }
is_snap_domain() {  # snapping continues a recipe run: a domain fit the paper way is left as it is
  is_recipe_domain $1 && case " $SNAP_DOMAINS " in *" $1 "*) return 0;; *) return 1;; esac
}

first_fit_args() {  # the anchors stage's fit of a domain: the recipe's one run, or the paper chain's first fit
  if is_recipe_domain $1; then
    local steps=$RECIPE_STEPS
    [ "$1" = seg ] && steps=$SEG_RECIPE_STEPS
    echo "--recipe sampling --steps $steps --seed $RECIPE_SEED --trials $RECIPE_TRIALS ${RECIPE_LR_FINAL:+--lr-final $RECIPE_LR_FINAL}"
  else
    echo "--recipe paper --steps $FIT_STEPS --batch-size $FIT_BATCH --lr $FIT_LR $(anchoring_of $1) $(first_fit_calibration $1)"
  fi
}

retarget_args() {  # a domain's anchoring when it warm-starts on a new generator: its own terms
  if is_snap_domain $1; then echo "--recipe sampling $SNAP_ANCHORING"; return; fi
  if is_recipe_domain $1; then echo "--recipe sampling"; return; fi
  local extra=""
  case " $RETARGET_CYCLE_DOMAINS " in *" $1 "*) extra="--lambda-cycle 1";; esac
  case " $REFINE_DOMAINS " in *" $1 "*) local noises=($REFINE_NOISE) aligns=($REFINE_ALIGN) finests=($REFINE_FINEST)
    extra="$REFINE_ANCHORING --feature-noise ${noises[-1]} --align-radius ${aligns[-1]} $(finest_flag ${finests[-1]})";; esac
  echo "--recipe paper --batch-size $FIT_BATCH --lr $FIT_LR $(anchoring_of $1) $extra $(photo_flag $1)"
}

anchoring_of() {
  if [ "$1" = rgb ]; then echo "$RGB_ANCHORING"; return; fi
  case " $PYRAMID_DOMAINS " in *" $1 "*) echo "$FIT_ANCHORING --feature-tap pyramid";; *) echo "$FIT_ANCHORING";; esac
}

photo_flag() {  # PHOTO_REFINE_DOMAINS -> fit's flag
  case " $PHOTO_REFINE_DOMAINS " in *" $1 "*) echo "--photo-refine";; esac
}
finest_flag() {  # REFINE_FINEST's 0/1 -> fit's flag
  [ "$1" = 1 ] && echo --finest-head || true
}

shipped_of() {  # where a domain's final anchor lands (fit creates the folder)
  echo "$ANCHORS_OUT/$1.safetensors"
}

first_fit_of() {  # where the anchors stage writes a domain: a refined or snapped domain's first fit stays in $RUNS
  case " $REFINE_DOMAINS " in *" $1 "*) echo "$RUNS/$1-first.safetensors"; return;; esac
  is_snap_domain $1 && { echo "$RUNS/$1-recipe.safetensors"; return; }
  shipped_of $1
}

first_fit_calibration() {  # a refined domain's first fit is continued as trained: no calibration yet
  case " $REFINE_DOMAINS " in *" $1 "*) echo "--calibration-latents 0";; esac
}

for stage in $stages; do
  case $stage in
  data)
    for d in rgb seg sketch landmark; do  # one domain per split: the anchors never see a pairing
      $SG toyfaces render --n "$N_ANCHOR" --seed "$(seed_of $d)" --domains $d --out "$DATA/anchor_$d"
    done
    $SG toyfaces render --n "$N_ANCHOR" --seed "$(seed_of segmenter)" --domains rgb,seg --out "$DATA/segmenter"
    $SG toyfaces render --n 1000 --seed "$(seed_of validation)" --out "$DATA/validation"  # for choosing settings
    $SG toyfaces render --n 1000 --seed "$(seed_of test)" --out "$DATA/test"
    ;;
  generator)  # regression onto the renderer, an adversarial phase, a sharpening phase (each a new run: fresh optimizer, new D)
    gen="$SG toyfaces train-generator --preset toyfaces64-wide --eval-every 200 --checkpoint-every 200"
    $gen --run-dir "$RUNS/generator-l1" --batch-size 256 --steps 7792 --lr 2e-3 --lr-final 1e-5 \
      --target-cache 200000 --render-workers 16 --out "$RUNS/generator-l1.safetensors"
    $gen --run-dir "$RUNS/generator-adv" --init-from "$RUNS/generator-l1.safetensors" --batch-size 64 --steps 2000 \
      --lr 1e-3 --adv-start 0 --lambda-adv 0.1 --target-cache 100000 --render-workers 8 --out "$RUNS/generator-adv.safetensors"
    # sharpening (one CPU core, about 48 minutes): a fresh discriminator, the edge term tripled, lr annealed
    $gen --run-dir "$RUNS/generator-sharp" --init-from "$RUNS/generator-adv.safetensors" --batch-size 16 --steps 1200 \
      --lr 5e-4 --lr-final 5e-5 --adv-start 0 --lambda-adv 0.1 --lambda-edge 3 --out domains/generator.safetensors
    ;;
  anchors)  # independent of each other: run side by side
    for d in rgb seg sketch landmark; do
      $SG fit --domain $d --data "$DATA/anchor_$d/$d" --generator "$GENERATOR" \
        --out "$(first_fit_of $d)" --run-dir "$RUNS/fit-$d" $(first_fit_args $d) --store-dtype float16 --no-progress > "$RUNS/fit-$d.log" 2>&1 &
    done
    wait
    ;;
  snap)  # continue each snapped recipe run with its files' parts snapped onto G's photo (fit's recipe terms)
    for d in $SNAP_DOMAINS; do
      is_snap_domain $d || continue
      $SG fit --domain $d --data "$DATA/anchor_$d/$d" --generator "$GENERATOR" \
        --init-from "$(first_fit_of $d)" $SNAP_ANCHORING --seed "$RECIPE_SEED" --steps "$SNAP_STEPS" \
        --out "$(shipped_of $d)" --run-dir "$RUNS/snap-$d" --store-dtype float16 --no-progress > "$RUNS/snap-$d.log" 2>&1 &
    done
    wait
    ;;
  refine)  # continue each refined domain's first fit with the sampled-latent terms
    for d in $REFINE_DOMAINS; do
      (
        from=$(first_fit_of $d); k=0; set -- $REFINE_STEPS
        noises=($REFINE_NOISE); aligns=($REFINE_ALIGN); starts=($REFINE_ALIGN_START); finests=($REFINE_FINEST)
        for steps in "$@"; do
          k=$((k + 1)); out="$RUNS/$d-refine$k.safetensors"; finish="--calibration-latents 0"
          [ "$k" = "$#" ] && out=$(shipped_of $d) && finish="--store-dtype float16 $(photo_flag $d)"  # calibrated, shipped
          $SG fit --recipe paper --domain $d --data "$DATA/anchor_$d/$d" --generator "$GENERATOR" --out "$out" \
            --run-dir "$RUNS/refine$k-$d" --steps "$steps" --batch-size "$FIT_BATCH" --lr "$FIT_LR" $(anchoring_of $d) \
            $REFINE_ANCHORING --feature-noise "${noises[$((k - 1))]:-0}" --align-radius "${aligns[$((k - 1))]:-0}" \
            --align-start "${starts[$((k - 1))]:-0}" $(finest_flag "${finests[$((k - 1))]:-0}") \
            $finish --init-from "$from" \
            --no-progress >> "$RUNS/refine-$d.log" 2>&1
          from=$out
        done
      ) &
    done
    wait
    ;;
  autodecoder)  # resumes its run folder; the generator with the refit mapping lands in $AUTODECODER_OUT
    OMP_NUM_THREADS=$AUTODECODER_THREADS $PY scripts/finetune_synthesis_autodecoder.py --run-dir "$RUNS/autodecoder" \
      --faces "$AUTODECODER_FACES" --steps "$AUTODECODER_STEPS" --judge domains/segmenter.safetensors \
      --mapping-out "$AUTODECODER_OUT" > "$RUNS/autodecoder.log" 2>&1
    NEW_GENERATOR=${NEW_GENERATOR:-$AUTODECODER_OUT}  # what a following retarget stage moves the anchors onto
    ;;
  retarget)  # warm-start every shipped anchor on a fine-tuned generator, two at a time, into $RETARGET_OUT
    : "${NEW_GENERATOR:?set NEW_GENERATOR to the fine-tuned generator file}"
    mkdir -p "$RETARGET_OUT"; cp "$NEW_GENERATOR" "$RETARGET_OUT/generator.safetensors"
    running=0
    for d in $RETARGET_DOMAINS; do
      $SG fit --domain $d --data "$DATA/anchor_$d/$d" --generator "$RETARGET_OUT/generator.safetensors" \
        --out "$RETARGET_OUT/$d.safetensors" --run-dir "$RUNS/retarget-$d" --steps "$RETARGET_STEPS" $(retarget_args $d) \
        --init-from domains/$d.safetensors --store-dtype float16 --no-progress > "$RUNS/retarget-$d.log" 2>&1 &
      running=$((running + 1)); [ $((running % 2)) = 0 ] && wait
    done
    wait
    echo "measure: GENERATOR=$RETARGET_OUT/generator.safetensors ANCHORS=$RETARGET_OUT bash scripts/eval_builtin.sh; ship: cp $RETARGET_OUT/*.safetensors domains/"
    ;;
  segmenter)  # the reference judges: segmenter and landmark detector, on the paired renders of the segmenter split
    $SG eval train-segmenter --data "$DATA/segmenter" --out domains/segmenter.safetensors --steps 3000 --val "$DATA/test"
    $SG toyfaces render --n "$N_ANCHOR" --seed "$(seed_of segmenter)" --domains rgb,landmark --out "$DATA/segmenter-landmark"
    $SG eval train-landmark-detector --data "$DATA/segmenter-landmark" --out domains/landmark_detector.safetensors --steps 2000
    ;;
  *) echo "unknown stage $stage (data generator anchors snap refine segmenter autodecoder retarget)" >&2; exit 2;;
  esac
done
