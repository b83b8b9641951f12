#!/usr/bin/env python
"""Synthesise a spoken-digit dataset with espeak-ng, deterministically.

Layout::

    <out>/<digit>/<voice>_<speed>_<pitch>.wav      (digit 0-9 spoken as a word)
    <out>/metadata.csv                              path,label,voice,speed,pitch

``path`` in the CSV is relative to ``<out>``. espeak-ng writes 22.05 kHz mono 16-bit WAV (so a
16 kHz backbone exercises resampling); ``--sample-rate`` resamples with sox. Same arguments, same
bytes: espeak-ng synthesis has no randomness.

Usage::

    python -m automl_tl.spoken_digits --out /tmp/digits       # 12 voices x 3 x 3
    python -m automl_tl.spoken_digits --out /tmp/d --voices en-us en-gb --speeds 150 \
        --pitches 50
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
from pathlib import Path

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]

#: espeak-ng accents plus a few of its voice variants (+f = female-like, +m = male-like)
DEFAULT_VOICES = [
    "en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
    "en-029", "en-us-nyc", "en-us+f2", "en-gb+f3", "en-us+m3", "en-gb-x-rp+f4",
]
DEFAULT_SPEEDS = [130, 160, 190]
DEFAULT_PITCHES = [35, 50, 70]


def voice_id(voice: str) -> str:
    """File-name-safe voice name (``en-us+f2`` -> ``en-us-f2``)."""
    return voice.replace("+", "-").replace("_", "-")


def make_dataset(out, *, voices=DEFAULT_VOICES, speeds=DEFAULT_SPEEDS, pitches=DEFAULT_PITCHES,
                 digits=range(10), sample_rate: int | None = None, amplitude: int = 100) -> list[dict]:
    """Write the dataset under ``out``; return the metadata rows (also in ``metadata.csv``)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng)")
    if sample_rate and shutil.which("sox") is None:
        raise RuntimeError("--sample-rate needs sox (apt-get install sox)")
    out = Path(out)
    rows = []
    for digit in digits:
        folder = out / str(digit)
        folder.mkdir(parents=True, exist_ok=True)
        for voice in voices:
            for speed in speeds:
                for pitch in pitches:
                    name = f"{voice_id(voice)}_{speed}_{pitch}.wav"
                    path = folder / name
                    if not path.exists():
                        tmp = path.with_suffix(".tmp.wav")
                        subprocess.run([exe, "-v", voice, "-s", str(speed), "-p", str(pitch),
                                        "-a", str(amplitude), "-w", str(tmp), WORDS[digit]],
                                       check=True, capture_output=True)
                        if sample_rate:
                            tmp2 = path.with_suffix(".sr.wav")
                            subprocess.run(["sox", str(tmp), "-r", str(sample_rate), str(tmp2)],
                                           check=True, capture_output=True)
                            tmp.unlink()
                            tmp = tmp2
                        tmp.replace(path)
                    rows.append({"path": f"{digit}/{name}", "label": str(digit), "voice": voice,
                                 "speed": speed, "pitch": pitch})
    with open(out / "metadata.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["path", "label", "voice", "speed", "pitch"])
        w.writeheader()
        w.writerows(rows)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--voices", nargs="+", default=DEFAULT_VOICES)
    p.add_argument("--speeds", nargs="+", type=int, default=DEFAULT_SPEEDS)
    p.add_argument("--pitches", nargs="+", type=int, default=DEFAULT_PITCHES)
    p.add_argument("--sample-rate", type=int, default=None, help="resample with sox (default: 22050)")
    args = p.parse_args(argv)
    rows = make_dataset(args.out, voices=args.voices, speeds=args.speeds, pitches=args.pitches,
                        sample_rate=args.sample_rate)
    print(f"wrote {len(rows)} clips ({len(args.voices)} voices) under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
