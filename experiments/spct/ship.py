"""Copy a trained GGUF LoRA adapter into the package and print its registry entry.

    python experiments/spct/ship.py RUN/adapter.gguf rewardscale-judge-1.5b

Paste the printed `EmbeddedAdapter(...)` into `rewardscale.models.ADAPTERS`.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from rewardscale.models import adapters_dir, sha256_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("adapter", type=Path)
    ap.add_argument("name")
    a = ap.parse_args()
    target = adapters_dir() / f"{a.name}.gguf"
    shutil.copyfile(a.adapter, target)
    print(
        f'EmbeddedAdapter(name="{a.name}", filename="{target.name}", size={target.stat().st_size:_}, '
        f'sha256="{sha256_file(target)}", ...)'
    )


if __name__ == "__main__":
    main()
