"""Small helpers shared by the audio tests (a module name no other test folder uses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_audio(path, x, sr, **kw):
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(x, dtype=np.float32), sr, **kw)
    return str(path)


def sine(freq=440.0, sr=16000, seconds=1.0, amp=0.5):
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)
