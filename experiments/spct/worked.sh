#!/usr/bin/env bash
# Ablation of the grounded cold start: the same 37 judge records (66 SFT records, pairs in both
# orders), with critiques that WORK the right answer out before naming it (`train grounded
# --worked`: 44 * 28 = 44 * 20 + 44 * 8 = ..., letters spelled, table rows listed, dates month by
# month, rule counts stated). Why: the plain grounded judge learned to copy the first response's
# answer as "the right answer" (dev samples, 2026-12-01). Same recipe as grounded.sh, EPOCHS=1
# (17 steps per epoch, ~33 min on 2 free cores; checkpoints every 4 steps). Resumable: run it again.
# RECORDS=worked_train_large.jsonl SFT=worked_sft_large.jsonl: 72 judge records -> 129 SFT records
# (subsets.py --grounded-pairs 8 --grounded-lists 2 --grounded-out worked_train_large.jsonl; none
# a dev or RFT record), 33 steps per epoch, ~60 min.
# Then: LORA=$RUN/adapter.gguf NAME=dev-worked SCORE_MODE=expected experiments/spct/eval.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=experiments/spct/data
RUN=${RUN:-$HOME/.cache/rewardscale/runs/spct-worked}
RECORDS=${RECORDS:-grounded_train.jsonl}
SFT=${SFT:-worked_sft.jsonl}
rewardscale train grounded --data $DATA/$RECORDS --tasks $DATA/tasks.jsonl --out $DATA/$SFT --worked
rewardscale train rft --data $DATA/rft_train.jsonl --model qwen2.5-coder-1.5b-instruct-q4_k_m --out "$RUN" \
    --sft-data $DATA/$SFT \
    --lora --lora-r 16 --lora-alpha 32 --lora-top-layers 8 --no-merge --gguf-adapter \
    --dtype float32 --lr 2e-4 --epochs ${EPOCHS:-1} --batch-size 1 --grad-accum 4 --save-steps 4 --threads 2 --resume
