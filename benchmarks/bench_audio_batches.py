"""Audio batched by duration (issue 33, item 4): the MFCC baseline's pass over spoken digits with
every clip padded to the fixed length vs batches padded to their longest clip's bucket, one run.

    .venv/bin/python benchmarks/bench_audio_batches.py [--voices 12] [--duration 0] [--out F.json]

Clips: the espeak-ng spoken digits (``automl_tl.spoken_digits``, 10 digits x ``--voices`` voices x
3 speeds, 22.05 kHz, written to a temporary folder). ``--duration 0`` takes the duration the audio
profile picks (the 90th percentile of the clip durations); padding waste is padded samples per
real sample - 1; features of both passes are compared (largest absolute difference).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import _common
import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--voices", type=int, default=12)
    ap.add_argument("--duration", type=float, default=0.0, help="seconds; 0: what the profile picks")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--out", type=Path, default=_common.OUT / "audio_batches.json")
    args = ap.parse_args()

    from automl_tl.batching import batch_order, map_batches
    from automl_tl.spoken_digits import DEFAULT_VOICES, make_dataset
    from automl_tl_audio import make_waveform_adapter, specs
    from automl_tl_audio._io import clip_samples

    out = Path(tempfile.mkdtemp()) / "digits"
    make_dataset(out, voices=DEFAULT_VOICES[:args.voices], pitches=[50])
    clips = [str(out / r["path"]) for r in csv.DictReader(open(out / "metadata.csv"))]
    rate = 16000
    seconds = np.array([clip_samples(c, rate) for c in clips]) / rate
    duration = args.duration or float(np.round(np.clip(np.percentile(seconds, 90), 0.5, 10), 1))
    cfg = {"sample_rate": rate, "duration": duration}
    spec = {s.name: s for s in specs()}["mfcc"]
    featurize = spec.featurize(None, cfg)
    res = {"clips": len(clips), "duration": duration, "seconds_mean": float(seconds.mean())}
    feats = {}
    for name, adapter in (("fixed", make_waveform_adapter(cfg)), ("by_duration", spec.make_adapter(cfg, None, None))):
        t0 = time.perf_counter()
        feats[name] = map_batches(featurize, clips, adapter, args.batch_size)
        secs = time.perf_counter() - t0
        real = padded = 0
        widths = set()
        for idx in batch_order(clips, adapter, args.batch_size):
            n = np.minimum(seconds[idx] * rate, duration * rate)
            w = adapter.output_shape[0] if name == "fixed" else adapter.padded_samples(int(np.ceil(n.max())))
            real, padded = real + n.sum(), padded + w * len(idx)
            widths.add(int(w))
        res[name] = {"clips_per_s": len(clips) / secs, "waste": padded / real - 1, "widths": len(widths)}
        print(f"mfcc    {name:<11} {len(clips)} clips ({seconds.mean():.2f} s on average, fixed {duration} s): "
              f"{len(clips) / secs:.0f} clips/s, padding {padded / real - 1:.1%} of the real samples, "
              f"{len(widths)} batch widths", flush=True)
    res["max_abs_diff"] = float(np.abs(feats["fixed"] - feats["by_duration"]).max())
    print(f"mfcc    features by duration vs fixed: max |diff| {res['max_abs_diff']:.2g}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
