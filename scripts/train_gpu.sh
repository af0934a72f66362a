#!/bin/sh
# Both stages of panoLANet (medium: ResNet-50 depth, 14.5 M parameters) on one H100/H200-class GPU in at most
# 8 minutes of wall time, from the packed data that travels with the repository (data/gpu_pack, 20 MiB); the model
# comes out as safetensors shards of <= 16 MiB plus its training.json in $OUT/stage2/model/.
#
#   sh scripts/train_gpu.sh [--flag value ...]      # extra flags go to both stages (e.g. --steps 10 for a try)
#
# Environment: PY (default .venv/bin/python, a CUDA build of torch), DATA (default data/gpu_pack; packed here from
# ../shared/data/hdri and ../shared/data/hdri_extra when missing), OUT (default runs/gpu).
# Budget: each stage stops on its own after time_limit_s = 180 s of training (configs/gpu_panolanet_medium_*.yaml),
# which leaves ~120 s for the start-ups, the pair pools (15 CPU workers), validation and saving. Stage 2 adds the
# shipped model's lighting loss from its step 1500 (of 3000) on. Not yet run on a GPU.
set -eu
PY=${PY:-.venv/bin/python}
DATA=${DATA:-data/gpu_pack}
OUT=${OUT:-runs/gpu}
if [ ! -d "$DATA" ]; then
    "$PY" -m hdr_core.data pack ../shared/data/hdri ../shared/data/hdri_extra --out "$DATA"
fi
start=$(date +%s)
"$PY" -m hdr_core.train --config configs/gpu_panolanet_medium_stage1.yaml --data "$DATA" --out-dir "$OUT/stage1" \
    --progress false "$@"
"$PY" -m hdr_core.train --config configs/gpu_panolanet_medium_stage2.yaml --data "$DATA" --out-dir "$OUT/stage2" \
    --init-from "$OUT/stage1" --progress false "$@"
echo "train_gpu: both stages in $(( $(date +%s) - start )) s; model in $OUT/stage2/model"
