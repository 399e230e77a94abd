"""The real reward server process (uvicorn on loopback) around a scripted judge: every endpoint,
bad inputs, dynamic batching, a full queue, timeouts and a poisoned request."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rewardscale.integrations.client import RewardClient, RewardServerError

from .server_proc import metric, server_process, wait_for

FAKE = ["-m", "tests.serve_fake"]


@pytest.fixture(scope="module")
def url():
    with server_process(FAKE) as u:
        yield u


def post(url: str, path: str, body, **kw) -> httpx.Response:
    if isinstance(body, (bytes, str)):
        return httpx.post(url + path, content=body, headers={"content-type": "application/json"}, timeout=30, **kw)
    return httpx.post(url + path, json=body, timeout=30, **kw)


def chatml(user: str) -> str:
    return f"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"


# --- /health and /v1/score ---


def test_health(url):
    r = httpx.get(url + "/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok" and body["model"] == "fake" and body["queue_depth"] == 0 and body["k"] == 2


def test_score_one_request(url):
    r = post(url, "/v1/score", {"requests": [{"query": "q", "responses": ["aaa", "aaaaaaa"], "id": "x"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["k"] == 2 and body["model"] == "fake"
    (res,) = body["results"]
    # the length judge scores 3 and 7 in every sample, whatever the order shown
    assert res["id"] == "x" and res["rewards"] == [6, 14] and res["mean_scores"] == [3, 7]
    assert res["best"] == 1 and res["n_valid"] == 2 and "samples" not in res


def test_score_messages_k_and_samples(url):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": "Name a prime"},
    ]
    body = {
        "requests": [{"messages": messages, "responses": ["7"]}, {"query": "q", "responses": ["ab", "abcd"]}],
        "k": 3,
        "return_samples": True,
    }
    r = post(url, "/v1/score", body)
    assert r.status_code == 200, r.text
    one, two = r.json()["results"]
    assert one["rewards"] == [3] and two["rewards"] == [6, 12]
    assert len(two["samples"]) == 3 and all(s["status"] == "ok" for s in two["samples"])
    assert sorted(map(tuple, (s["permutation"] for s in two["samples"]))) != [(0, 1)] * 3  # shuffled


@pytest.mark.parametrize(
    "body, code, needle",
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2]", 400, "expected a JSON object"),
        ({}, 400, "'requests' must be a non-empty list"),
        ({"requests": []}, 400, "'requests' must be a non-empty list"),
        ({"requests": [{"query": "q"}]}, 400, "requests[0]: missing field 'responses'"),
        ({"requests": [{"responses": ["a"]}]}, 400, "requests[0]: missing field 'query'"),
        ({"requests": [{"query": "q", "responses": []}]}, 400, "at least one response"),
        ({"requests": [{"query": "q", "responses": "a"}]}, 400, "must be a list"),
        ({"requests": [{"query": "q", "responses": [1]}]}, 400, "response 0 is int"),
        ({"requests": [{"query": " ", "responses": ["a"]}]}, 400, "the query is empty"),
        ({"requests": [{"messages": [{"role": "robot", "content": "x"}], "responses": ["a"]}]}, 400, "role"),
        ({"requests": [{"query": "q", "responses": ["a"] * 9}]}, 400, "9 responses; the limit is 8"),
        ({"requests": [{"query": "q" * 2001, "responses": ["a"]}]}, 400, "the limit is 2000"),
        ({"requests": [{"query": "q", "responses": ["a"]}], "k": 0}, 400, "between 1 and 16"),
        ({"requests": [{"query": "q", "responses": ["a"]}], "k": 17}, 400, "between 1 and 16"),
        ({"requests": [{"query": "q", "responses": ["a"]}], "k": "2"}, 400, "must be an integer"),
        ({"requests": [{"query": "q", "responses": ["a"]}], "k_meta": 2}, 400, "meta RM"),
        ({"requests": [{"query": "q", "responses": ["a"]}], "return_samples": "yes"}, 400, "true or false"),
        ({"request": [{"query": "q", "responses": ["a"]}]}, 400, "unknown field(s) ['request']"),
        ({"requests": [{"query": "q", "responses": ["a" * 1000]}] * 110}, 413, "over the limit"),
    ],
)
def test_score_rejects_bad_input(url, body, code, needle):
    r = post(url, "/v1/score", body)
    assert r.status_code == code, r.text
    assert needle in r.json()["detail"]


def test_wrong_method_and_path(url):
    assert httpx.get(url + "/v1/score").status_code == 405
    assert httpx.get(url + "/nope").status_code == 404


def test_bad_calls_leave_the_server_serving(url):
    for _ in range(3):
        assert post(url, "/v1/score", b"garbage").status_code == 400
    r = post(url, "/v1/score", {"requests": [{"query": "q", "responses": ["aa"]}]})
    assert r.status_code == 200 and r.json()["results"][0]["rewards"] == [4]


# --- OpenRLHF /get_reward ---


def test_get_reward_groups_by_prompt(url):
    p1, p2 = chatml("Say hi"), chatml("Say bye")
    prompts = [p1, p2, p1, p2]
    responses = ["aa", "bbbbbb", "aaaa<|im_end|>", "b<|im_end|><|endoftext|>"]
    before = metric(url, "rewardscale_scored_requests_total")
    body = {"query": [p + r for p, r in zip(prompts, responses)], "prompts": prompts, "labels": ["", "", "", ""]}
    r = post(url, "/get_reward", body)
    assert r.status_code == 200, r.text
    out = r.json()
    # end-of-turn tokens are cut from the responses: lengths 2, 6, 4, 1 -> unit scale (s - 1) / 9
    expected = [(s - 1) / 9 for s in (2, 6, 4, 1)]
    assert out["rewards"] == pytest.approx(expected) and out["scores"] == pytest.approx(expected)
    assert out["extra_logs"]["grm_mean_score"] == [2, 6, 4, 1]
    assert out["extra_logs"]["grm_valid_samples"] == [2, 2, 2, 2]
    # two prompts -> two GRM requests (each prompt's responses judged together), not four
    assert metric(url, "rewardscale_scored_requests_total") - before == 2


def test_get_reward_without_prompts_splits_at_the_assistant_turn(url):
    r = post(url, "/get_reward", {"query": [chatml("Say hi") + "aaaaa<|im_end|>"]})
    assert r.status_code == 200, r.text
    assert r.json()["extra_logs"]["grm_mean_score"] == [5]


def test_get_reward_abstains_without_failing(url):
    r = post(url, "/get_reward", {"query": [chatml("x") + "GARBAGE"], "prompts": [chatml("x")]})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["rewards"] == [0.0] and out["extra_logs"]["grm_abstained"] == [1.0]


@pytest.mark.parametrize(
    "body, needle",
    [
        ({"prompts": ["p"]}, "'query' must be a non-empty list"),
        ({"query": ["pr"], "prompts": ["p", "q"]}, "list of 1 strings"),
        ({"query": ["hello world"], "prompts": ["bye"]}, "query[0] does not contain prompts[0]"),
        ({"query": ["plain text, no template"]}, "no 'prompts' entry"),
        ({"query": [3], "prompts": ["p"]}, "query[0] must be a string"),
        ({"query": ["pr"], "prompts": ["p"], "labels": [1, 2]}, "'labels'"),
    ],
)
def test_get_reward_rejects_bad_input(url, body, needle):
    r = post(url, "/get_reward", body)
    assert r.status_code == 400, r.text
    assert needle in r.json()["detail"]


# --- /metrics ---


def test_metrics_prometheus_text(url):
    post(url, "/v1/score", {"requests": [{"query": "q", "responses": ["GARBAGE", "a"]}], "k": 2})
    post(url, "/v1/score", {"requests": [{"query": "q", "responses": ["fine"]}], "k": 2})
    post(url, "/v1/score", b"oops")
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'rewardscale_http_requests_total{endpoint="/v1/score",code="200"}' in text
    assert 'rewardscale_http_requests_total{endpoint="/v1/score",code="400"}' in text
    assert 'rewardscale_http_request_duration_seconds_bucket{endpoint="/v1/score",le="+Inf"}' in text
    assert 'rewardscale_samples_total{status="no_verdict"}' in text
    assert "# TYPE rewardscale_queue_depth gauge" in text and "rewardscale_queue_depth 0" in text
    assert 0 < metric(url, "rewardscale_parse_failure_rate") < 1
    assert metric(url, "rewardscale_batches_total") >= 1
    # every sample line is `name{labels} value` or `name value`
    for line in text.splitlines():
        if line and not line.startswith("#"):
            float(line.rsplit(" ", 1)[1])


# --- the HTTP client ---


def test_client_scores_and_surfaces_4xx(url):
    client = RewardClient(url, retries=0)
    (res,) = client.score([{"query": "q", "responses": ["aaa"]}], k=1)
    assert res["rewards"] == [3]
    with pytest.raises(RewardServerError, match="400.*at least one response"):
        client.score([{"query": "q", "responses": []}])
    assert client.health()["status"] == "ok"
    client.close()


def test_client_reports_unreachable_server():
    with pytest.raises(RewardServerError, match="cannot reach"):
        RewardClient("http://127.0.0.1:9", retries=1, backoff_s=0.01).score([{"query": "q", "responses": ["a"]}])


# --- batching, full queue, timeout, poisoned request (a gated judge holds the worker busy) ---


def score_one(url: str, response: str) -> httpx.Response:
    return post(url, "/v1/score", {"requests": [{"query": "q", "responses": [response]}]})


def test_concurrent_calls_share_one_backend_call(tmp_path: Path):
    gate = tmp_path / "gate"
    with server_process([*FAKE, "--gate", str(gate), "--max-batch", "32"]) as url, ThreadPoolExecutor(8) as pool:
        first = pool.submit(score_one, url, "a")
        wait_for(lambda: metric(url, "rewardscale_in_flight_requests") == 1, "the first call to reach the judge")
        rest = [pool.submit(score_one, url, "a" * n) for n in range(2, 7)]
        wait_for(lambda: metric(url, "rewardscale_queue_depth") == 5, "five calls queued")
        gate.touch()
        assert first.result().json()["results"][0]["rewards"] == [2]
        assert [f.result().json()["results"][0]["rewards"] for f in rest] == [[2 * n] for n in range(2, 7)]
        # six calls, two backend calls: the five that queued while the judge was busy went together
        assert metric(url, "rewardscale_batches_total") == 2
        assert metric(url, 'rewardscale_batch_size_bucket{le="4"}') == 1
        assert metric(url, 'rewardscale_batch_size_bucket{le="8"}') == 2


def test_full_queue_answers_503_and_recovers(tmp_path: Path):
    gate = tmp_path / "gate"
    args = [*FAKE, "--gate", str(gate), "--max-batch", "1", "--max-queue", "2"]
    with server_process(args) as url, ThreadPoolExecutor(4) as pool:
        first = pool.submit(score_one, url, "a")
        wait_for(lambda: metric(url, "rewardscale_in_flight_requests") == 1, "the first call to reach the judge")
        queued = [pool.submit(score_one, url, "aa"), pool.submit(score_one, url, "aaa")]
        wait_for(lambda: metric(url, "rewardscale_queue_depth") == 2, "two calls queued")
        full = score_one(url, "aaaa")
        assert full.status_code == 503 and full.headers["retry-after"] == "1"
        assert "queue holds 2 of 2" in full.json()["detail"]
        gate.touch()
        assert [f.result().status_code for f in [first, *queued]] == [200, 200, 200]
        assert score_one(url, "aaaa").json()["results"][0]["rewards"] == [8]
        assert metric(url, 'rewardscale_rejected_requests_total{reason="queue_full"}') == 1
        assert metric(url, 'rewardscale_http_requests_total{endpoint="/v1/score",code="503"}') == 1


def test_timeout_answers_504_and_drops_the_work(tmp_path: Path):
    gate = tmp_path / "gate"
    with server_process([*FAKE, "--gate", str(gate), "--timeout", "0.5"]) as url:
        r = score_one(url, "a")
        assert r.status_code == 504 and "timeout" in r.json()["detail"]
        assert httpx.get(url + "/health").status_code == 200
        gate.touch()
        wait_for(lambda: metric(url, "rewardscale_in_flight_requests") == 0, "the stuck batch to finish")
        ok = score_one(url, "aaa")
        assert ok.status_code == 200 and ok.json()["results"][0]["rewards"] == [6]


def test_poisoned_request_fails_alone(tmp_path: Path):
    gate = tmp_path / "gate"
    with server_process([*FAKE, "--gate", str(gate)]) as url, ThreadPoolExecutor(4) as pool:
        first = pool.submit(score_one, url, "a")
        wait_for(lambda: metric(url, "rewardscale_in_flight_requests") == 1, "the first call to reach the judge")
        bad = pool.submit(score_one, url, "BOOM")
        good = pool.submit(score_one, url, "aaaaa")
        wait_for(lambda: metric(url, "rewardscale_queue_depth") == 2, "two calls queued")
        gate.touch()
        assert first.result().status_code == 200
        detail = bad.result().json()["detail"]  # what failed stays in the server log, under the error id
        assert bad.result().status_code == 502 and "error id" in detail and "BOOM" not in detail
        assert good.result().status_code == 200 and good.result().json()["results"][0]["rewards"] == [10]
        assert httpx.get(url + "/health").json()["status"] == "ok"


def test_body_is_json_roundtrip_of_reward(url):
    r = post(url, "/v1/score", json.dumps({"requests": [{"query": "é", "responses": ["ü"]}]}).encode())
    assert r.status_code == 200 and r.json()["results"][0]["rewards"] == [2]


# --- the real CLI command on a real model ---


@pytest.mark.slow
def test_rewardscale_serve_on_the_fixture_model():
    from rewardscale import models

    from .server_proc import CLI

    args = [*CLI, "serve", "--model", models.FIXTURE_MODEL, "-k", "1", "--max-tokens", "48", "--parallel", "2",
            "--max-retries", "0", "--log-level", "warning"]  # fmt: skip
    with server_process(args, startup_s=300) as url:
        assert httpx.get(url + "/health").json()["model"] == models.FIXTURE_MODEL
        r = httpx.post(url + "/v1/score", json={"requests": [{"query": "2+2?", "responses": ["4", "5"]}]}, timeout=300)
        assert r.status_code == 200, r.text
        (res,) = r.json()["results"]
        assert res["k"] == 1 and len(res["rewards"]) == 2 and res["n_valid"] + res["n_abstained"] == 1
        p = chatml("2+2?")
        r = httpx.post(url + "/get_reward", json={"query": [p + "4", p + "5"], "prompts": [p, p]}, timeout=300)
        assert r.status_code == 200, r.text
        assert len(r.json()["rewards"]) == 2 and all(0 <= x <= 1 for x in r.json()["scores"])
        assert metric(url, "rewardscale_scored_requests_total") == 2  # one per call: the pair went together
