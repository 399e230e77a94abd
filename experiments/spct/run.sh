#!/usr/bin/env bash
# SPCT for the embedded judge on 2 CPU cores: data, RFT sampling + LoRA SFT, GGUF adapter.
# Every step resumes: rerun the same line after a stop (responses file, sample store, --resume).
# The RFT sample store is committed (experiments/spct/rft_samples.sqlite): a rerun on a fresh
# machine generates nothing that was already drawn. Then: experiments/spct/eval.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
DATA=experiments/spct/data
RUN=${RUN:-$HOME/.cache/rewardscale/runs/spct}
BASE=qwen2.5-coder-1.5b-instruct-q4_k_m
rewardscale train data --out $DATA -t 0.8 --n 1 --max-tokens 128 --parallel 8
python experiments/spct/subsets.py $DATA --train-pairs 4 --train-lists 1 --train-singles 1 --dev-pairs 3
# fp32: this CPU (AVX2, no AVX512-BF16) runs bf16 matmuls at 0.7 GFLOP/s against 135 for fp32.
# The hinted round (second piece, 2026-12-01): 7 of the 24 examples with no correct sample got
# one from hints (8 of 66 hinted samples kept); the store holds all 210 samples.
rewardscale train rft --data $DATA/rft_train.jsonl --model $BASE --out "$RUN" \
    --store experiments/spct/rft_samples.sqlite \
    --n-samples 3 --temperature 0.5 --force-verdict --critique-budget 96 --max-tokens 160 \
    --lora --lora-r 16 --lora-alpha 32 --lora-top-layers 8 --no-merge --gguf-adapter \
    --dtype float32 --lr 2e-4 --epochs 1 --batch-size 1 --grad-accum 4 --save-steps 4 --threads 2 --resume
# (the shipped rewardscale-judge-1.5b comes from grounded.sh, not from this RFT-only run)
