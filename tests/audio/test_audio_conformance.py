"""The engine's backbone conformance suite, run on every audio backbone (random weights)."""

from __future__ import annotations

import numpy as np

from automl_tl.testing import BackboneTestCase

from audio_helpers import sine, write_audio


class TestAudioBackbones(BackboneTestCase):
    backbone_names = ("speech-embedding", "wav2vec2-base", "whisper-tiny-encoder", "whisper-base-encoder")
    input_config = {"sample_rate": 16000, "duration": 0.5}

    def plugin_manager(self):
        import automl_tl_audio
        from automl_tl.plugin_manager import PluginManager

        return PluginManager(autoload=False, builtins=False, plugins=[automl_tl_audio])

    def sample_items(self, tmp_path):
        return [write_audio(tmp_path / "a.wav", sine(300, 22050, 0.8), 22050),
                write_audio(tmp_path / "b.flac", np.stack([sine(700, 8000, 0.3)] * 2, 1), 8000)]
