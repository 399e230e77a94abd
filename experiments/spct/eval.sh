#!/usr/bin/env bash
# Raw vs SPCT judge on the dev pairs, same seeds and settings, K = 8; then the comparison table.
# Resumable: each bench keeps its samples in OUT/samples.sqlite. LIMIT=6 measures the first 6 pairs
# (what the 2026-12-01 session could afford: ~2 min per pair at K = 8 on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/../.."
DEV=experiments/spct/data/dev_pairs.jsonl
OUT=experiments/spct/results
# SCORE_MODE=expected also reports Voting@k over expected scores from the same samples.
# LORA=PATH measures a run's GGUF adapter on the raw model instead of the judge JUDGE names.
FLAGS="--k 1,2,4,8 --force-verdict --critique-budget 96 --max-tokens 160 --max-retries 1 --parallel 8 --seed 0"
# EXTRA="--principles blind" adds flags to both runs (a LORA run gets no embedded judge settings).
FLAGS="$FLAGS --score-mode ${SCORE_MODE:-integer} ${LIMIT:+--limit $LIMIT} ${EXTRA:-}"
RAW=$OUT/dev-raw${SCORE_MODE:+-$SCORE_MODE}
JUDGE_MODEL=${JUDGE:-rewardscale-judge-1.5b}
[ -n "${LORA:-}" ] && JUDGE_MODEL=qwen2.5-coder-1.5b-instruct-q4_k_m
TRAINED=$OUT/${NAME:-dev-spct}${SCORE_MODE:+-$SCORE_MODE}
# each judge keeps one store, so an expected-mode run reuses its integer run's critiques
rewardscale bench generic --data $DEV --out $RAW --store $OUT/dev-raw/samples.sqlite \
    --model qwen2.5-coder-1.5b-instruct-q4_k_m $FLAGS
rewardscale bench generic --data $DEV --out $TRAINED --store $OUT/${NAME:-dev-spct}/samples.sqlite \
    --model "$JUDGE_MODEL" ${LORA:+--lora "$LORA"} $FLAGS
python experiments/spct/compare.py $RAW $TRAINED | tee $TRAINED/compare.md
