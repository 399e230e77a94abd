import itertools

import pytest

from rewardscale.plan import plan, position_counts
from rewardscale.types import Judgment, SampleSpec, Status
from rewardscale.vote import pick_best, totals, win_probability


@pytest.mark.parametrize("n,k", [(2, 8), (3, 9), (4, 8), (3, 4), (5, 7), (2, 1), (1, 5)])
def test_positions_balanced(n, k):
    specs = plan(n, k, seed=3)
    assert len(specs) == k and [s.index for s in specs] == list(range(k))
    for s in specs:
        assert sorted(s.permutation) == list(range(n))
    counts = position_counts(specs, n)
    flat = list(itertools.chain(*counts))
    if k % n == 0:
        assert set(flat) == {k // n}
    else:
        assert max(flat) - min(flat) <= 1


def test_plan_is_seeded_and_recorded():
    assert plan(3, 6, seed=1) == plan(3, 6, seed=1)
    assert plan(3, 12, seed=1) != plan(3, 12, seed=2)


def test_identical_permutations_share_a_group_with_distinct_slots():
    specs = plan(2, 8, seed=0)
    groups = {}
    for s in specs:
        groups.setdefault(s.group, []).append(s)
    assert len(groups) == 2
    for members in groups.values():
        assert len({m.permutation for m in members}) == 1
        assert len({m.seed for m in members}) == 1
        assert sorted(m.slot for m in members) == list(range(len(members)))


def test_no_shuffle_keeps_original_order():
    assert {s.permutation for s in plan(3, 4, shuffle=False)} == {(0, 1, 2)}


def _j(scores, status=Status.OK):
    return Judgment(spec=SampleSpec(0, (0, 1), 0), status=status, text="", scores=scores)


def test_totals_sum_valid_and_skip_abstentions():
    samples = [_j((9, 2)), _j((7, 3)), _j(None, Status.NO_VERDICT)]
    assert totals(samples, 2) == [16.0, 5.0]


def test_ties_seeded_and_expected_value():
    assert win_probability([10, 10, 3]) == [0.5, 0.5, 0.0]
    picks = {pick_best([10, 10, 3], seed) for seed in range(50)}
    assert picks == {0, 1}
    assert pick_best([10, 10, 3], 7) == pick_best([10, 10, 3], 7)
    assert pick_best([1, 5], 0) == 1
    assert pick_best([0, 0], 0, any_valid=False) is None
    assert win_probability([0, 0, 0], any_valid=False) == pytest.approx([1 / 3] * 3)


def test_sample_spec_maps_shown_and_original_order_both_ways():
    spec = SampleSpec(index=0, permutation=(2, 0, 1), seed=0)
    shown = (7, 3, 9)  # response 2 shown first, then 0, then 1
    assert spec.to_original(shown) == (3, 9, 7)
    assert spec.to_shown(spec.to_original(shown)) == shown
    with pytest.raises(ValueError, match="2 values for a permutation of 3"):
        spec.to_original((1, 2))


def test_derive_seed_is_stable_and_keeps_the_retry_and_topup_seeds():
    import hashlib

    from rewardscale.grm import retry_seed
    from rewardscale.plan import derive_seed
    from rewardscale.store import topup_seed

    def old(text: str) -> int:  # the formula both used before derive_seed existed
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little") & 0x7FFFFFFF

    assert derive_seed(7, 1, 3) == old("7:1:3") == 2034818655  # the same in every process
    assert retry_seed(SampleSpec(0, (0, 1), seed=7, slot=1), 3) == old("7:1:3")
    assert topup_seed(7, 2) == old("topup:7:2")
    assert 0 <= derive_seed(2**40, "x") < 2**31


def test_balanced_permutations_balance_positions_across_items_of_one_size():
    from rewardscale.plan import balanced_permutations

    sizes = [2, 3, 2, 3, 3, 2, 2]
    perms = balanced_permutations(sizes, seed=5)
    assert [len(p) for p in perms] == sizes and perms == balanced_permutations(sizes, seed=5)
    pairs = [p for p in perms if len(p) == 2]
    assert sum(p[0] == 0 for p in pairs) == 2  # 4 pairs: each response shown first twice
    triples = [p for p in perms if len(p) == 3]
    assert all(sorted(col) == [0, 1, 2] for col in zip(*triples))  # one Latin-square block


# ---- the k_meta rule: one function, one behaviour, everywhere


def test_k_meta_defaults_to_half_of_k_and_is_capped_at_k():
    from rewardscale.vote import k_meta_at

    assert [k_meta_at(k) for k in (1, 2, 3, 4, 8, 9)] == [1, 1, 1, 2, 4, 4]
    assert k_meta_at(8, 3) == 3 and k_meta_at(4, 9) == 4 and k_meta_at(1, 1) == 1
    for bad in (0, -2):
        with pytest.raises(ValueError, match="k_meta must be >= 1"):
            k_meta_at(4, bad)
    for bad in (1.5, True, "2"):
        with pytest.raises(ValueError, match="k_meta must be an integer"):
            k_meta_at(4, bad)


@pytest.mark.parametrize("k_meta", [None, 1, 3, 9])
def test_the_grm_the_server_and_the_bench_use_the_same_k_meta(k_meta):
    from rewardscale.grm import resolve_k_meta
    from rewardscale.serve.config import ServerConfig
    from rewardscale.vote import k_meta_at

    server = ServerConfig(k=8, k_meta=k_meta)
    for k in range(1, 9):
        used = k_meta_at(k, k_meta)
        assert resolve_k_meta(k, k_meta, meta_rm=object()) == server.meta_default(k) == used
