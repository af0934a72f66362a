#!/bin/sh
# Reproduce docs/results.md from a fresh clone: data, every model's training runs, the render_eval benchmark.
#
#   make venv && sh scripts/reproduce_results.sh            # everything (CPU: several hours of training on 2 cores;
#                                                          not timed end to end: see docs/results.md)
#   STEPS_SCALE=0.5 sh scripts/reproduce_results.sh          # every run at half its step budget (the budgets the
#                                                          results used per model are listed in docs/results.md)
#   RETRAIN_SHIPPED=1 sh scripts/reproduce_results.sh        # also retrain the shipped panolanet_small
#   SYNTH_EXPERIMENT=1 sh scripts/reproduce_results.sh       # also the synthetic-data experiment (docs/models.md)
#
# Training runs resume (--resume true), so a killed script continues where it stopped; finished runs are skipped.
# GPU users: the same commands pick CUDA; for several GPUs replace "$PY -m hdr_core.train" with
# "torchrun --nproc_per_node=N -m hdr_core.train".
set -eu
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STEPS_SCALE=${STEPS_SCALE:-1}
OUT=${OUT:-out/results}
# LDR styles rendered (hdr_core.looks; each style renders every method again, the ground truth is shared)
LDR_STYLES=${LDR_STYLES:-virtual,mdk08,phone_hdr,camera360,phone_local,filmic}

$PY -m hdr_core.data fetch pmndrs --out data/pmndrs
$PY -m hdr_core.data fetch blender --out data/blender_test

train() {  # train CONFIG_STEM: both stages' configs name their own out_dir; skipped when its model/ exists
  out=$($PY -c "import sys; from hdr_core.train import parse_config; print(parse_config(sys.argv[1:]).out_dir)" \
        --config "configs/$1.yaml")
  if [ -f "$out/model/model.safetensors" ]; then echo "== $1: done ($out/model)"; return; fi
  steps=$($PY -c "import sys, math; from hdr_core.train import parse_config; \
c = parse_config(sys.argv[2:]); print(max(1, math.ceil(c.steps * float(sys.argv[1]))))" "$STEPS_SCALE" \
        --config "configs/$1.yaml")
  echo "== $1: $steps steps -> $out"
  $PY -m hdr_core.train --config "configs/$1.yaml" --steps "$steps" --resume true --progress false
}

train ship_panolanet_small_stage1  # the shipped model's stage 1, also the ablation's starting point
if [ "${RETRAIN_SHIPPED:-0}" = 1 ]; then
  train ship_panolanet_small_stage2
  SHIPPED=runs/ship_panolanet_small_stage2/model
else
  SHIPPED=hdr_core/weights/panolanet_small
fi
train ablation_lanet_small_stage2
for m in hdrcnn singlehdr fhdr; do train "${m}_small_stage1"; train "${m}_small_stage2"; done
SYNTH_METHOD=""
if [ "${SYNTH_EXPERIMENT:-0}" = 1 ]; then
  $PY scenes/synth_panorama.py --n 16 --out data/synth
  train synth_panolanet_small_stage1; train synth_panolanet_small_stage2
  SYNTH_METHOD="--method panolanet_small_synth=model:runs/synth_panolanet_small_stage2/model"
fi

$PY -m render_eval --from-hdr data/blender_test --out "$OUT" --ldr-style "$LDR_STYLES" --jobs 2 \
  --method gt --method ldr --method akyuz --method masia --method koeo \
  --method "panolanet_small=model:$SHIPPED" \
  --method lanet_small=model:runs/ablation_lanet_small_stage2/model \
  --method hdrcnn_small=model:runs/hdrcnn_small_stage2/model \
  --method singlehdr_small=model:runs/singlehdr_small_stage2/model \
  --method fhdr_small=model:runs/fhdr_small_stage2/model $SYNTH_METHOD \
  --model-size 512x256 --paired-ref panolanet_small
# the panorama and light tables of every style, with the training-free baselines (no rendering: minutes)
$PY -m render_eval --from-hdr data/blender_test --out "${OUT}_light" --no-render \
  --ldr-style virtual,mdk08,phone_hdr,camera360,phone_local,filmic \
  --method gt --method ldr --method akyuz --method masia --method koeo --method "panolanet_small=model:$SHIPPED" \
  --model-size 512x256 --paired-ref panolanet_small
$PY scripts/results_tables.py "$OUT" "${OUT}_light" > "$OUT/tables.md"
echo "tables: $OUT/summary.md, $OUT/tables.md; report: $OUT/<style>/report.html"
