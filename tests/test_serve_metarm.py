"""The real reward server process with a meta RM (MetaRM@k): a tiny MiniLM meta RM trained for two
steps, loaded once at startup, around the scripted length judge (`tests/serve_fake.py`). k_meta
defaults and overrides, q on the returned samples, 400s, /get_reward and the client on the same
path, calls with different k_meta sharing one backend call, and startup errors of
`rewardscale serve --meta-rm`."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from rewardscale.integrations.client import RewardClient, RewardServerError

from .server_proc import metric, server_process, wait_for
from .test_metarm import synthetic_samples

FAKE = ["-m", "tests.serve_fake"]
PAIR = {"query": "q", "responses": ["aaa", "aaaaaaa"]}  # the length judge: 3 and 7 in every sample


@pytest.fixture(scope="module")
def meta_dir(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    import torch

    from rewardscale.metarm.data import read_rows
    from rewardscale.metarm.options import MetaRMOptions
    from rewardscale.metarm.train import train_metarm

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("serve_metarm")
    rows, stats = read_rows(synthetic_samples(tmp / "samples.jsonl", examples=6, K=2), budget_chars=400)
    opts = MetaRMOptions(batch_size=4, max_length=64, budget_chars=400, max_steps=2, progress=False, threads=1)
    train_metarm(rows, tmp / "meta", opts, data_stats=stats.to_dict())
    return tmp / "meta"


@pytest.fixture(scope="module")
def url(meta_dir):
    with server_process([*FAKE, "--meta-rm", str(meta_dir)]) as u:
        yield u


def post(url: str, path: str, body) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=60)


def test_health_names_the_meta_rm(url, meta_dir):
    body = httpx.get(url + "/health").json()
    assert body["status"] == "ok" and body["meta_rm"] == str(meta_dir)
    assert body["k"] == 2 and body["k_meta"] == 1  # k // 2


def test_default_k_meta_is_half_of_k_and_samples_carry_q(url):
    r = post(url, "/v1/score", {"requests": [PAIR], "k": 4, "return_samples": True})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["k"] == 4 and body["k_meta"] == 2
    (res,) = body["results"]
    assert res["method"] == "metarm" and res["k_meta"] == 2 and len(res["selected"]) == 2
    assert res["rewards"] == [6, 14] and res["mean_scores"] == [3, 7] and res["best"] == 1  # 2 voters
    q = [s["q"] for s in res["samples"]]
    assert len(q) == 4 and all(0.0 <= x <= 1.0 for x in q)
    kept = [q[i] for i in res["selected"]]
    dropped = [x for i, x in enumerate(q) if i not in res["selected"]]
    assert min(kept) >= max(dropped)  # the top k_meta by q voted


@pytest.mark.parametrize("k_meta, used, rewards", [(1, 1, [3, 7]), (3, 3, [9, 21]), (4, 4, [12, 28]), (5, 4, [12, 28])])
def test_request_k_meta_sets_the_voters(url, k_meta, used, rewards):
    # above k it is capped at k (vote.k_meta_at, the rule everywhere): every sample votes
    r = post(url, "/v1/score", {"requests": [PAIR, PAIR], "k": 4, "k_meta": k_meta})
    assert r.status_code == 200, r.text
    assert r.json()["k_meta"] == used
    for res in r.json()["results"]:
        assert res["k_meta"] == used and len(res["selected"]) == used and res["rewards"] == rewards
        assert "samples" not in res


@pytest.mark.parametrize(
    "extra, needle",
    [
        ({"k": 4, "k_meta": 0}, "'k_meta' must be >= 1"),
        ({"k": 4, "k_meta": "2"}, "'k_meta' must be an integer"),
        ({"k": 4, "k_meta": True}, "'k_meta' must be an integer"),
    ],
)
def test_bad_k_meta_is_400(url, extra, needle):
    r = post(url, "/v1/score", {"requests": [PAIR], **extra})
    assert r.status_code == 400, r.text
    assert needle in r.json()["detail"]


def test_get_reward_and_client_use_the_meta_rm(url):
    before = metric(url, "rewardscale_metarm_requests_total")
    p = "<|im_start|>user\nsay something<|im_end|>\n<|im_start|>assistant\n"
    r = post(url, "/get_reward", {"query": [p + "aaa", p + "aaaaaaa"], "prompts": [p, p], "k": 4})
    assert r.status_code == 200, r.text
    assert r.json()["scores"] == pytest.approx([2 / 9, 6 / 9])
    r = post(url, "/get_reward", {"query": [p + "aaa"], "prompts": [p], "k": 2, "k_meta": 3})
    assert r.status_code == 200, r.text  # above k: capped at k, as everywhere
    r = post(url, "/get_reward", {"query": [p + "aaa"], "prompts": [p], "k": 2, "k_meta": 0})
    assert r.status_code == 400 and "'k_meta' must be >= 1" in r.json()["detail"]
    # the TRL and verl integrations go through this client: same server, same MetaRM@k
    client = RewardClient(url, retries=0)
    (res,) = client.score([PAIR], k=2)
    assert res["method"] == "metarm" and res["k_meta"] == 1 and res["rewards"] == [3, 7]
    (res,) = asyncio.run(client.ascore([PAIR], k=4, k_meta=3))
    assert res["k_meta"] == 3 and res["rewards"] == [9, 21]
    (res,) = client.score([PAIR], k=2, k_meta=3)
    assert res["k_meta"] == 2  # capped at the call's k
    with pytest.raises(RewardServerError, match="400.*must be >= 1"):
        client.score([PAIR], k=2, k_meta=0)
    client.close()
    assert metric(url, "rewardscale_metarm_requests_total") == before + 5
    assert metric(url, "rewardscale_metarm_samples_total") > 0
    assert metric(url, "rewardscale_metarm_seconds_total") > 0


def test_calls_with_different_k_meta_share_one_backend_call(tmp_path: Path, meta_dir):
    gate = tmp_path / "gate"
    args = [*FAKE, "--gate", str(gate), "--meta-rm", str(meta_dir), "--k-meta", "2"]
    with server_process(args) as url, ThreadPoolExecutor(4) as pool:
        assert httpx.get(url + "/health").json()["k_meta"] == 2
        first = pool.submit(post, url, "/v1/score", {"requests": [PAIR]})
        wait_for(lambda: metric(url, "rewardscale_in_flight_requests") == 1, "the first call to reach the judge")
        one = pool.submit(post, url, "/v1/score", {"requests": [PAIR], "k": 4, "k_meta": 1})
        default = pool.submit(post, url, "/v1/score", {"requests": [PAIR], "k": 4})
        low_k = pool.submit(post, url, "/v1/score", {"requests": [PAIR, PAIR], "k": 1})
        wait_for(lambda: metric(url, "rewardscale_queue_depth") == 4, "three calls queued")
        gate.touch()
        assert first.result().json()["results"][0]["rewards"] == [6, 14]  # server default k_meta = 2 of k = 2
        assert one.result().json()["results"][0]["rewards"] == [3, 7]
        assert default.result().json()["results"][0]["rewards"] == [6, 14]
        # a call with fewer samples than the server's --k-meta votes with all of them
        assert low_k.result().json()["k_meta"] == 1
        # first call; the two k=4 calls sampled together in one backend call; the k=1 call
        assert metric(url, "rewardscale_batches_total") == 3
        assert metric(url, "rewardscale_metarm_requests_total") == 5


# --- `rewardscale serve --meta-rm` startup errors (no judge is ever built) ---


@pytest.fixture
def serve_cli(monkeypatch):
    import rewardscale.cli as cli
    import rewardscale.cli.common as cli_common
    import rewardscale.serve as serve

    def no_judge(*a, **kw):
        raise AssertionError("the judge was built before the meta RM options were checked")

    monkeypatch.setattr(cli_common, "build_grm", no_judge)
    monkeypatch.setattr(serve, "run", no_judge)
    runner = CliRunner()
    return lambda *args: runner.invoke(cli.app, ["serve", *args])


def test_serve_refuses_a_wrong_meta_rm_dir(serve_cli, tmp_path):
    res = serve_cli("--meta-rm", str(tmp_path / "nope"))
    assert res.exit_code == 2 and "no such directory" in res.output
    (tmp_path / "config.json").write_text("{}")
    res = serve_cli("--meta-rm", str(tmp_path))
    assert res.exit_code == 2 and "not a rewardscale meta RM" in res.output


def test_serve_refuses_bad_k_meta(serve_cli, tmp_path):
    res = serve_cli("--k-meta", "2")
    assert res.exit_code == 2 and "needs --meta-rm" in res.output
    res = serve_cli("--k-meta", "0", "--meta-rm", str(tmp_path))
    assert res.exit_code == 2 and "--k-meta" in res.output  # below 1; above -k is capped per call
