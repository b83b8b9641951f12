"""Every registered image backbone passes the conformance suite (random weights, tiny input)."""

import numpy as np
from PIL import Image

from automl_tl.testing import BackboneTestCase


class TestVisionBackbones(BackboneTestCase):
    backbone_names = ("mobilenetv2", "efficientnetb0", "resnet50", "vgg16", "efficientnet-lite0")
    input_config = {"image_size": 64}

    def sample_items(self, tmp_path):
        rng = np.random.default_rng(0)
        paths = []
        for i, mode in enumerate(("RGB", "L", "RGBA")):
            p = tmp_path / f"{i}.png"
            arr = rng.integers(0, 255, (40 + 10 * i, 50, len(mode)) if mode != "L" else (40, 30), dtype=np.uint8)
            Image.fromarray(arr, mode).save(p)
            paths.append(str(p))
        return paths
