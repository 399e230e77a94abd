#!/usr/bin/env bash
# The shipped recipe (worked.sh, EPOCHS=2) on the 66 worked SFT records plus the 57 grounded
# critiques of the safety family (data-safety/train.jsonl, 41 judge records): 123 SFT records,
# 31 steps per epoch, 70 min on 2 free cores (2026-12-08: 62 steps, loss 1.98 -> 0.09, mean 0.40;
# train_result_worked_safety.json). Why: the shipped judge prefers the complying
# response on 6 of 7 harmful dev requests (results/safety16-judge); it never saw a request whose
# right answer declines. Resumable: run it again. Then measure it as the shipped judge is measured:
# experiments/spct/eval_adapter.sh $RUN/adapter.gguf experiments/spct/data-safety/dev_pairs.jsonl OUT
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=experiments/spct/data
SAFE=experiments/spct/data-safety
RUN=${RUN:-$HOME/.cache/rewardscale/runs/spct-worked-safety}
rewardscale train grounded --data $DATA/grounded_train.jsonl --tasks $DATA/tasks.jsonl --out $DATA/worked_sft.jsonl --worked
rewardscale train grounded --data $SAFE/train.jsonl --tasks $SAFE/tasks.jsonl --out $SAFE/worked_sft.jsonl --worked
mkdir -p "$RUN"
cat $DATA/worked_sft.jsonl $SAFE/worked_sft.jsonl > "$RUN/sft_records.jsonl"
rewardscale train rft --data $DATA/rft_train.jsonl --model qwen2.5-coder-1.5b-instruct-q4_k_m --out "$RUN" \
    --sft-data "$RUN/sft_records.jsonl" \
    --lora --lora-r 16 --lora-alpha 32 --lora-top-layers 8 --no-merge --gguf-adapter \
    --dtype float32 --lr 2e-4 --epochs ${EPOCHS:-2} --batch-size 1 --grad-accum 4 --save-steps 4 --threads 2 --resume
