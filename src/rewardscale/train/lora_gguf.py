"""Convert a PEFT LoRA adapter to a llama.cpp GGUF LoRA adapter, so the embedded backend can apply
it to the quantised base model at load time (llama.cpp's `lora_adapters`).

The layout is the one llama.cpp's own `convert_lora_to_gguf.py` writes: `general.type = adapter`,
`adapter.type = lora`, `adapter.lora.alpha`, and for every adapted base tensor `<gguf name>.lora_a`
(shape r x in, PEFT's lora_A) and `<gguf name>.lora_b` (out x r, PEFT's lora_B). Tensor names come
from the `gguf` package's own Hugging Face -> GGUF name map (llama.cpp's gguf-py), so they match
the tensors of a GGUF converted by llama.cpp.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import RewardscaleError
from .deps import require

_ARCHES = {"Qwen2ForCausalLM": "QWEN2", "LlamaForCausalLM": "LLAMA", "MistralForCausalLM": "LLAMA"}
_PEFT_KEY = re.compile(r"^(?:base_model\.model\.)?(?P<base>.+)\.lora_(?P<ab>[AB])(?:\.default)?\.weight$")


class AdapterError(RewardscaleError, ValueError):
    """An adapter that cannot be converted (unknown architecture, unmapped tensor, bad config)."""


def _base_config(adapter_dir: Path, base_config: dict[str, Any] | None) -> dict[str, Any]:
    if base_config is not None:
        return base_config
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    base = Path(acfg.get("base_model_name_or_path") or "")
    if not (base / "config.json").is_file():
        raise AdapterError(f"cannot find the base model's config.json at {base!s}; pass base_config")
    return json.loads((base / "config.json").read_text())


def convert_lora(adapter_dir: str | Path, out: str | Path, base_config: dict[str, Any] | None = None) -> Path:
    """Write `out` (a .gguf LoRA adapter) from a PEFT adapter directory; returns `out`."""
    gguf, safetensors_torch = require("gguf", "safetensors.torch")
    adapter_dir, out = Path(adapter_dir), Path(out)
    acfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    if acfg.get("peft_type", "LORA") != "LORA":
        raise AdapterError(f"{adapter_dir}: not a LoRA adapter (peft_type {acfg.get('peft_type')!r})")
    if acfg.get("use_dora") or acfg.get("use_rslora"):
        raise AdapterError(f"{adapter_dir}: DoRA / rsLoRA adapters are not supported by llama.cpp's LoRA format")
    cfg = _base_config(adapter_dir, base_config)
    arch_name = next((a for a in cfg.get("architectures", []) if a in _ARCHES), None)
    if arch_name is None:
        raise AdapterError(f"unsupported architecture {cfg.get('architectures')}; supported: {', '.join(_ARCHES)}")
    arch = getattr(gguf.MODEL_ARCH, _ARCHES[arch_name])
    names = gguf.get_tensor_name_map(arch, cfg["num_hidden_layers"])
    state = safetensors_torch.load_file(str(adapter_dir / "adapter_model.safetensors"))
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in state.items():
        m = _PEFT_KEY.match(key)
        if m is None:
            raise AdapterError(f"{adapter_dir}: unexpected tensor {key!r} (only LoRA A/B weights convert)")
        target = names.get_name(m.group("base") + ".weight", try_suffixes=(".weight",))
        if target is None:
            raise AdapterError(f"{adapter_dir}: no GGUF name for {m.group('base')!r}")
        pairs.setdefault(target, {})[m.group("ab")] = tensor
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_string("general.type", "adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(acfg["lora_alpha"]))
    writer.add_string("general.name", acfg.get("base_model_name_or_path") or "lora")
    for target in sorted(pairs):
        ab = pairs[target]
        if set(ab) != {"A", "B"}:
            raise AdapterError(f"{adapter_dir}: {target} has lora_{''.join(ab)} only")
        a, b = ab["A"].float().numpy().astype("float16"), ab["B"].float().numpy().astype("float16")
        if a.shape[0] != b.shape[1]:
            raise AdapterError(f"{adapter_dir}: {target}: lora_A {a.shape} and lora_B {b.shape} disagree on rank")
        writer.add_tensor(target + ".lora_a", a)
        writer.add_tensor(target + ".lora_b", b)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out
