#!/bin/sh
# Both stages of panoLANet (medium: ResNet-50 depth, 14.5 M parameters) on one H100/H200-class GPU in at most
# 8 minutes of wall time, from a data pack (data/gpu_pack, 20 MiB, made here once; data/ is not in git, so a GPU
# machine gets it by carrying the folder with the working tree); the model comes out as safetensors shards of
# <= 16 MiB plus its training.json in $RUN_DIR/stage2/model/.
#
#   sh scripts/train_gpu.sh [--flag value ...]      # extra flags go to both stages (e.g. --steps 10 for a try)
#
# Environment:
#   PY       the Python with a CUDA build of torch (default: .venv/bin/python if there is one, else python3)
#   DATA     the data pack (default data/gpu_pack; packed from ../shared/data/hdri and ../shared/data/hdri_extra
#            when missing and those folders are there)
#   RUN_DIR  where both stages' runs go (default runs/gpu)
#   MODEL_TO a folder that receives a copy of the final model's files (e.g. the folder a GPU machine sends back);
#            unset: no copy
# Budget: each stage stops on its own after time_limit_s = 180 s of training (configs/gpu_panolanet_medium_*.yaml),
# which leaves ~120 s for the start-ups, the pair pools (15 CPU workers), validation and saving. Stage 2 adds the
# shipped model's lighting loss from its step 1500 (of 3000) on. It first checks that $PY imports what training needs
# and sees a GPU (unless the flags name a --device). Not yet run on a GPU.
set -eu
if [ -z "${PY:-}" ]; then
    if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
DATA=${DATA:-data/gpu_pack}
RUN_DIR=${RUN_DIR:-runs/gpu}
if [ ! -d "$DATA" ]; then
    if [ ! -d ../shared/data/hdri ]; then
        echo "train_gpu: no data pack at $DATA (make one with: python -m hdr_core.data pack FOLDERS --out $DATA)" >&2
        exit 2
    fi
    "$PY" -m hdr_core.data pack ../shared/data/hdri ../shared/data/hdri_extra --out "$DATA"
fi
# the Python must import the project's needs and, unless a --device flag says otherwise, see a GPU: say so at once
case " $* " in
    *" --device "* | *" --device="*) need_gpu=0 ;;
    *) need_gpu=1 ;;
esac
NEED_GPU=$need_gpu "$PY" -c 'import os, sys, cv2, safetensors, torch, yaml
if os.environ["NEED_GPU"] == "1" and not torch.cuda.is_available():
    sys.exit(f"train_gpu: {sys.executable} has torch {torch.__version__}, which sees no CUDA GPU (set PY)")'
start=$(date +%s)
"$PY" -m hdr_core.train --config configs/gpu_panolanet_medium_stage1.yaml --data "$DATA" --out-dir "$RUN_DIR/stage1" \
    --progress false "$@"
"$PY" -m hdr_core.train --config configs/gpu_panolanet_medium_stage2.yaml --data "$DATA" --out-dir "$RUN_DIR/stage2" \
    --init-from "$RUN_DIR/stage1" --progress false "$@"
if [ -n "${MODEL_TO:-}" ]; then
    mkdir -p "$MODEL_TO"
    cp "$RUN_DIR"/stage2/model/* "$MODEL_TO"/
fi
echo "train_gpu: both stages in $(( $(date +%s) - start )) s; model in $RUN_DIR/stage2/model${MODEL_TO:+, copied to $MODEL_TO}"
