#!/usr/bin/env bash
# A candidate GGUF LoRA adapter measured as the shipped judge is: the raw base model + the adapter,
# with the judge settings the shipped judge carries (models.judge_settings, so they cannot drift),
# K = 8, seed 0. Resumable: the samples are kept in OUT/samples.sqlite; rerun the same command.
#   experiments/spct/eval_adapter.sh out/runs/spct-worked-safety/adapter.gguf \
#       experiments/spct/data-safety/dev_pairs.jsonl experiments/spct/results/safety16-worked-safety
# Compare with the shipped judge's run on the same data: python experiments/spct/compare.py A B
set -euo pipefail
cd "$(dirname "$0")/../.."
LORA=$1 DATA=$2 OUT=$3
FLAGS=$(python -c "
from rewardscale.cli.options import flag_name
from rewardscale.models import DEFAULT_MODEL, judge_settings
print(' '.join(flag_name(k) if v is True else f'{flag_name(k)} {v}' for k, v in judge_settings(DEFAULT_MODEL).items()))")
rewardscale bench generic --data "$DATA" --out "$OUT" --store "$OUT/samples.sqlite" \
    --model qwen2.5-coder-1.5b-instruct-q4_k_m --lora "$LORA" $FLAGS --k 1,2,4,8 --parallel 8 --seed 0
