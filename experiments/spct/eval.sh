#!/usr/bin/env bash
# Raw vs SPCT judge on the dev pairs, same seeds and settings, K = 8; then the comparison table.
# Resumable: each bench keeps its samples in OUT/samples.sqlite. LIMIT=6 measures the first 6 pairs
# (what the 2026-12-01 session could afford: ~2 min per pair at K = 8 on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=experiments/spct/data/dev_pairs.jsonl
OUT=experiments/spct/results
FLAGS="--k 1,2,4,8 --force-verdict --critique-budget 96 --max-tokens 160 --max-retries 1 --parallel 8 --seed 0 ${LIMIT:+--limit $LIMIT}"
rewardscale bench generic --data $DEV --out $OUT/dev-raw --model qwen2.5-coder-1.5b-instruct-q4_k_m $FLAGS
rewardscale bench generic --data $DEV --out $OUT/dev-spct --model "${JUDGE:-rewardscale-judge-1.5b}" $FLAGS
python experiments/spct/compare.py $OUT/dev-raw $OUT/dev-spct | tee $OUT/compare.md
