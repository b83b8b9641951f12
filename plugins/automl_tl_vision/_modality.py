"""The image modality: checking, describing and comparing image datasets."""

from __future__ import annotations

import concurrent.futures
import os
import threading
import weakref
from collections import Counter

import numpy as np

from automl_tl.fates import checkpoint
from automl_tl.forward import frozen_backbone
from automl_tl.modalities import CheckResult, Modality, Skip

from ._images import check_image, load_rgb, open_image

IMAGE_SIZES = (96, 128, 160, 192, 224)
SIMILARITY_SAMPLE = 48


def check_workers(n_items: int) -> int:
    """Threads for the load check: half the cores, up to 32, never more than there are images.
    Not every core: checking a small image is mostly Python holding the GIL (and files are opened
    one at a time, `_images._OPEN_LOCK`), so threads pay only where cores are many; on 2 cores
    2 threads checked 10 000 Fashion-MNIST PNGs in 2.1-2.3 s, 1 thread in 1.2-1.4 s."""
    return max(1, min(n_items, 32, (os.cpu_count() or 1) // 2))


def _chunked_map(pool, fn, items, chunk: int):
    """``fn`` over ``items`` in order, ``chunk`` items per task (one future per image costs about
    as much as checking a small PNG)."""
    def run(part):
        return [fn(x) for x in part]

    for part in pool.map(run, [items[s:s + chunk] for s in range(0, len(items), chunk)]):
        yield from part


def _percentiles(values) -> dict:
    if not len(values):
        return {}
    arr = np.asarray(values, dtype=float)
    return {f"p{q}": float(np.percentile(arr, q)) for q in (5, 50, 95)} | {
        "min": float(arr.min()), "max": float(arr.max())}


class ImageModality(Modality):
    name = "image"
    extensions = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
    similarity_threshold = 0.4
    similarity_method = (
        "Batch-norm statistics shift. A backbone's BatchNormalization layers store the mean and "
        "variance of their inputs over the pretraining data (ImageNet). We pass a sample of up to "
        f"{SIMILARITY_SAMPLE} of your images through the backbone and measure, at every BN layer "
        "and channel, the symmetric KL divergence between the Gaussian of your data's activations "
        "and the stored pretraining Gaussian; similarity = exp(-D / 0.1) where D is the median over "
        "layers of the per-layer median divergence. Measured with MobileNetV2 (docs/strategy.md): "
        "crops of natural photographs 0.53, Fashion-MNIST 0.30, MNIST 0.16, 8x8 digits 0.04, "
        "uniform noise 0.002; 'similar' means >= 0.4. "
        "Backbones without BN layers (VGG16) are compared on pixel statistics instead: the "
        "channel means and standard deviations against ImageNet's, plus a penalty for grey images; "
        "similarity = exp(-D / 2) (natural crops 0.79, Fashion-MNIST 0.23, MNIST 0.06). Pixel "
        "statistics cannot tell noise from photographs; BN-shift can."
    )

    def check(self, items, *, progress=False):
        """Every image checked (:func:`check_image`), by a pool of threads: Pillow releases the
        GIL while it decodes, and nothing else runs during the load step. Unreadable images are
        skipped and counted, in item order, as one by one.

        Every image, not a sample: an unreadable file let through would fail the feature pass
        (the adapter cannot drop an item without the labels and the cache knowing), so a sampled
        check would need the engine to drop and count items mid-pass; not done (issue 33)."""
        from tqdm.auto import tqdm

        items = list(items)
        keep, kept, skips = [], [], []
        workers = check_workers(len(items))
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
        try:
            reasons = _chunked_map(pool, check_image, items, max(1, min(64, len(items) // (4 * workers))))
            for i, (path, reason) in enumerate(tqdm(zip(items, reasons), total=len(items), desc="checking images",
                                                    unit="img", disable=not progress, leave=False)):
                checkpoint()  # a Ctrl-C stops the check here
                if reason is None:
                    keep.append(i)
                    kept.append(path)
                else:
                    skips.append(Skip(item=str(path), reason=reason))
        finally:  # on Ctrl-C (or a bug) the images not started yet are dropped, not waited for
            pool.shutdown(wait=False, cancel_futures=True)
        return CheckResult(keep=tuple(keep), items=tuple(kept), skips=tuple(skips))

    def describe(self, items):
        rng = np.random.default_rng(0)
        sample = list(items) if len(items) <= 2000 else [items[i] for i in
                                                         rng.choice(len(items), 2000, replace=False)]
        widths, heights, modes, formats = [], [], Counter(), Counter()
        for path in sample:
            img, _ = open_image(path)
            with img:
                widths.append(img.size[0])
                heights.append(img.size[1])
                modes[img.mode] += 1
                formats[img.format or "?"] += 1
        return {"n_described": len(sample), "width": _percentiles(widths),
                "height": _percentiles(heights), "modes": dict(modes), "formats": dict(formats),
                "grey_share": (modes.get("L", 0) + modes.get("1", 0) + modes.get("I;16", 0)) / max(1, len(sample))}

    @staticmethod
    def image_size_for(stats: dict, spec) -> int:
        default = int(spec.default_input_config.get("image_size", 224))
        short = min(stats.get("width", {}).get("p50", default), stats.get("height", {}).get("p50", default))
        # Upscaling tiny images past 2x adds compute, not information; pretrained filters still
        # want at least 96 px.
        wanted = max(96, min(default, short * 2))
        # the backbone's own resolution is a choice too (EfficientNet-Lite1 / Lite2: 240 / 260 px)
        return min(sorted({*(s for s in IMAGE_SIZES if s < default), default}), key=lambda s: abs(s - wanted))

    @staticmethod
    def source_size_for(stats: dict, size: int) -> int:
        """The transport size: images are decoded to ``min(size, native)`` on the host and sent as
        uint8; the model resizes them to ``size`` (``image_input``). ``native`` is the larger of
        the 95th percentiles of width and height, so that nearly every image keeps its detail
        (a 28 px dataset is sent at 28 px, 1/47 of 96 px float32's bytes); one size for the whole
        dataset keeps every batch one static shape (nothing retraces)."""
        w, h = stats.get("width", {}).get("p95"), stats.get("height", {}).get("p95")
        if w is None or h is None:
            return int(size)
        return int(min(size, max(1, int(np.ceil(max(w, h))))))

    def analyse(self, items, stats, spec, weights):
        size = self.image_size_for(stats, spec)
        input_config = {"image_size": size, "source_size": self.source_size_for(stats, size)}
        model = frozen_backbone(spec, weights, input_config)  # built once: the probe's pass reuses it
        if not _takes_uint8(model, input_config["source_size"]):
            # a plugin's builder that reads image_size only (docs/example_plugin): it built the
            # float32 model it always built, which make_image_adapter feeds without source_size
            input_config = {"image_size": size}
        rng = np.random.default_rng(0)
        idx = rng.choice(len(items), min(SIMILARITY_SAMPLE, len(items)), replace=False)
        source = input_config.get("source_size", size)  # what the adapter sends, as the features see it
        batch = np.stack([load_rgb(items[i], source) for i in idx])
        batch = batch if "source_size" in input_config else batch.astype("float32")
        score, detail = bn_shift_similarity(model, batch)
        if score is None:
            score, detail = pixel_similarity(batch)
        return {"similarity": float(score), "input_config": input_config, "stats": detail}

    def augmentation(self, input_config):
        import keras

        return keras.Sequential([
            keras.layers.RandomFlip("horizontal"),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect"),
            keras.layers.RandomZoom((-0.1, 0.1), fill_mode="reflect"),
            keras.layers.RandomContrast(0.15),
        ], name="augmentation")


def _takes_uint8(model, source_size: int) -> bool:
    """Whether ``model`` (built with ``source_size``) takes uint8 images at that size."""
    import keras

    inputs = keras.tree.flatten(model.input)
    return len(inputs) == 1 and str(inputs[0].dtype) == "uint8" and \
        tuple(inputs[0].shape[1:]) == (source_size, source_size, 3)


def _gauss_sym_kl(m1, v1, m2, v2, eps=1e-3):
    v1 = v1 + eps
    v2 = v2 + eps
    d2 = (m1 - m2) ** 2
    return 0.25 * (v1 / v2 + v2 / v1 - 2 + d2 / v2 + d2 / v1)


#: each frozen backbone's statistics model: the frozen backbone is shared per process
#: (``frozen_backbone``), and its statistics model lives as long as it does (the statistics model
#: holds its layers, not it), so a second fit on it neither rebuilds it nor retraces its compiled
#: step (about 2.5 s of MobileNetV2's on 2 cores)
_PROBES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_PROBES_LOCK = threading.Lock()  # the dict, and each statistics model's call


def _bn_probe(model):
    """``(BatchNormalization layers, model of their inputs' per-image channel statistics)`` of
    ``model``, built once while it lives; ``([], None)`` when it has none."""
    import keras

    from automl_tl.training import nested_layers

    with _PROBES_LOCK:
        if model in _PROBES:
            return _PROBES[model]
        bns = [l for l in nested_layers(model) if isinstance(l, keras.layers.BatchNormalization)]
        probe = None
        if bns:
            # Per-image channel means and variances are reduced inside the model, so only (batch,
            # channels) pairs come out: all activations of 48 images at 224 px are ~1.3 G values,
            # which held the run at several GB of memory for this one number.
            outputs = []
            for l in bns:
                x = l.input
                axes = tuple(range(1, len(x.shape) - 1))
                outputs += [keras.ops.mean(x, axis=axes), keras.ops.var(x, axis=axes)] if axes else \
                    [x, keras.ops.zeros_like(x)]
            probe = keras.Model(model.input, outputs)
        _PROBES[model] = (bns, probe)
        return bns, probe


def bn_shift_similarity(model, batch):
    """Similarity from BatchNorm statistics shift; (None, {}) when the model has no BN layers."""
    bns, probe = _bn_probe(model)
    if not bns:
        return None, {}
    # predict_on_batch (a compiled step) frees what the eager call kept: 1.3 vs 2.5 GB at 224 px;
    # one caller at a time, the statistics model being shared (its first call compiles the step).
    # Every call has one shape, the last batch padded with blank images whose rows are dropped
    # (each image's statistics are its own): a last batch of another size traced the step again,
    # once per dataset size (1-2 s of MobileNetV2's)
    n = len(batch)
    padded = np.concatenate([batch, np.zeros((-n % 16, *batch.shape[1:]), batch.dtype)]) if n % 16 else batch
    with _PROBES_LOCK:
        parts = [[np.asarray(a, dtype=np.float64)[:n - i] for a in probe.predict_on_batch(padded[i:i + 16])]
                 for i in range(0, n, 16)]
    stats = [np.concatenate(column) for column in zip(*parts)]
    divs = []
    for k, bn in enumerate(bns):
        means, variances = stats[2 * k], stats[2 * k + 1]
        # the law of total variance over images of equal size: within plus between
        mu, var = means.mean(0), variances.mean(0) + means.var(0)
        mm = np.asarray(bn.moving_mean.numpy(), dtype=np.float64)
        mv = np.asarray(bn.moving_variance.numpy(), dtype=np.float64)
        divs.append(float(np.median(_gauss_sym_kl(mu, var, mm, mv))))
    divergence = float(np.median(divs))
    return float(np.exp(-divergence / 0.1)), {"method": "bn_shift", "divergence": divergence,
                                              "n_bn_layers": len(bns)}


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


def pixel_similarity(batch):
    x = batch.reshape(-1, 3) / 255.0
    mean, std = x.mean(0), x.std(0)
    colour = float(np.mean(np.abs(x[:, 0] - x[:, 1]) + np.abs(x[:, 1] - x[:, 2])))
    dist = float(np.sum(((mean - IMAGENET_MEAN) / IMAGENET_STD) ** 2) +
                 np.sum(np.log(std / IMAGENET_STD) ** 2))
    colour_penalty = max(0.0, 0.1 - colour) * 10  # grey images: ImageNet is mostly colour
    divergence = dist + colour_penalty
    return float(np.exp(-divergence / 2.0)), {"method": "pixel_stats", "divergence": divergence,
                                              "colourfulness": colour}
