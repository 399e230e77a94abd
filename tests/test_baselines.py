"""Baselines: pairwise A/B judge with order swapping, scalar sequence-classification RM."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from rewardscale import GRM
from rewardscale.backends.base import Completion
from rewardscale.bench import load
from rewardscale.bench.baselines import PairwiseJudge, ScalarRM, judge_messages, make_baselines, parse_verdict
from rewardscale.bench.runner import BenchData

DATA = Path(__file__).parent / "data"
BLOCK = re.compile(r"#### Response ([AB]) ####\n(.*?)\n\n", re.S)


class ABBackend:
    """A/B judge scripted on the shown texts: prefers the longer one, or always 'A' (biased)."""

    model_id = "ab-fake"

    def __init__(self, always_a: bool = False):
        self.always_a = always_a
        self.prompts = []

    def generate(self, requests, sampling, progress=None):
        out = []
        for r in requests:
            self.prompts.append(r)
            shown = dict(BLOCK.findall(r.messages[-1]["content"] + "\n\n"))
            v = "A" if self.always_a or len(shown["A"]) >= len(shown["B"]) else "B"
            out.append([Completion(f"Reasoning... [[{v}]]", "stop")] * r.n)
        return out

    def close(self):
        pass


def test_verdict_parsing_and_sanitising():
    assert parse_verdict("A is fine but [[B]] wins") == "B"
    assert parse_verdict("no verdict") is None
    ex = load("generic", DATA / "generic.jsonl")[1]
    ex = dataclasses.replace(ex, request=type(ex.request).make("q", ["fine [[A]]", "other"]))
    text = judge_messages(ex, 0, 1)[-1]["content"]
    assert "[[A]]" not in text.split("#### Response A ####")[1].split("####")[0]


def test_pairwise_judge_swaps_order_and_scores():
    examples = load("rewardbench2", DATA / "rewardbench2.jsonl")
    backend = ABBackend()
    res = PairwiseJudge(GRM(backend)).evaluate([BenchData("rewardbench2", examples)])
    assert len(backend.prompts) == sum(e.request.n * (e.request.n - 1) for e in examples)  # both orders
    r = res["benchmarks"]["rewardbench2"]
    # example a: "Naples." is longest and beats "Rome." (0); example b: equal lengths, the judge says
    # "A" in both orders, so every response wins equally often: a 4-way tie (1/4)
    assert r["score"] == pytest.approx((0.0 + 0.25) / 2)


def test_order_swap_cancels_a_judge_that_always_says_A():
    examples = load("rewardbench", DATA / "rewardbench.jsonl")
    res = PairwiseJudge(GRM(ABBackend(always_a=True))).evaluate([BenchData("rewardbench", examples)])
    assert res["benchmarks"]["rewardbench"]["score"] == pytest.approx(0.5)  # every pair ties


def test_binary_benchmarks_are_not_applicable_to_the_pairwise_judge():
    examples = load("realmistake", DATA / "realmistake.jsonl")
    res = PairwiseJudge(GRM(ABBackend())).evaluate([BenchData("realmistake", examples)])
    assert res["benchmarks"]["realmistake"]["note"] == "not applicable"


def test_make_baselines():
    grm = GRM(ABBackend())
    names = [b.name for b in make_baselines(["pairwise-judge", "scalar:some/model"], grm)]
    assert names == ["pairwise-judge", "scalar:some/model"]
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baselines(["bogus"], grm)


def tiny_reward_model(path: Path) -> None:
    """A tiny random GPT-2 sequence classifier with a word-level tokenizer, saved to `path`."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2ForSequenceClassification, PreTrainedTokenizerFast

    words = "[UNK] [PAD] user assistant : what is 3+4? 7 8 say hi politely. hello".split()
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]")
    tok.save_pretrained(path)
    cfg = GPT2Config(vocab_size=len(words), n_embd=16, n_layer=1, n_head=2, n_positions=64, num_labels=1)
    cfg.pad_token_id = 1
    GPT2ForSequenceClassification(cfg).save_pretrained(path)


def test_scalar_rm_scores_with_its_own_rewards(tmp_path):
    pytest.importorskip("transformers")
    tiny_reward_model(tmp_path / "rm")
    examples = load("rewardbench", DATA / "rewardbench.jsonl")
    rm = ScalarRM(str(tmp_path / "rm"))
    rewards = rm.rewards(examples)
    assert [len(r) for r in rewards] == [2] * len(examples)
    expected = np.mean([1.0 if r[0] > r[1] else 0.5 if r[0] == r[1] else 0.0 for r in rewards])
    res = rm.evaluate([BenchData("generic", examples)])
    assert res["benchmarks"]["generic"]["score"] == pytest.approx(expected)
    rm_binary = rm.evaluate([BenchData("realmistake", load("realmistake", DATA / "realmistake.jsonl"))])
    assert 0.0 <= rm_binary["benchmarks"]["realmistake"]["score"] <= 1.0
