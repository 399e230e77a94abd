#!/usr/bin/env bash
# The checker-grounded cold start for the embedded 1.5B judge (after run.sh built the data):
# 37 judge records none of which is an RFT example -> 66 SFT records (pairs in both orders) whose
# completions state the right answer, each response's verdict and the scores, all from the
# checkers; LoRA SFT; GGUF adapter. Resumable (--resume continues from the newest checkpoint).
# Then: JUDGE=... NAME=dev-grounded SCORE_MODE=expected LIMIT=6 experiments/spct/eval.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=experiments/spct/data
RUN=${RUN:-$HOME/.cache/rewardscale/runs/spct-grounded}
python experiments/spct/subsets.py $DATA --train-pairs 4 --train-lists 1 --train-singles 1 --dev-pairs 3 \
    --grounded-pairs 4 --grounded-lists 1
rewardscale train grounded --data $DATA/grounded_train.jsonl --tasks $DATA/tasks.jsonl --out $DATA/grounded_sft.jsonl
rewardscale train rft --data $DATA/rft_train.jsonl --model qwen2.5-coder-1.5b-instruct-q4_k_m --out "$RUN" \
    --sft-data $DATA/grounded_sft.jsonl \
    --lora --lora-r 16 --lora-alpha 32 --lora-top-layers 8 --no-merge --gguf-adapter \
    --dtype float32 --lr 2e-4 --epochs 1 --batch-size 1 --grad-accum 4 --save-steps 4 --threads 2 --resume
python experiments/spct/ship.py "$RUN/adapter.gguf" rewardscale-judge-1.5b
