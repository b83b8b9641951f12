"""Helpers shared by the Keras ports of Hugging Face audio encoders."""

from __future__ import annotations

import re

import numpy as np

__all__ = ["activation", "set_dense", "set_conv1d", "set_layer_norm", "set_mha", "blocks_by_name"]

_ACTS = {"gelu": "gelu", "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh"}


def activation(name: str) -> str:
    """Keras name of a Hugging Face activation (exact GELU; Keras' default ``gelu`` is erf-based)."""
    try:
        return _ACTS[name]
    except KeyError:
        raise ValueError(f"activation {name!r} is not supported by the Keras port "
                         f"(supported: {', '.join(_ACTS)})") from None


def _assign(layer, values) -> None:
    weights = layer.weights
    if len(weights) != len(values):
        raise ValueError(f"{layer.name}: expected {len(weights)} arrays, got {len(values)}")
    for w, v in zip(weights, values):
        if tuple(w.shape) != tuple(v.shape):
            raise ValueError(f"{layer.name}/{w.name}: shape {tuple(v.shape)} does not fit "
                             f"{tuple(w.shape)}")
        w.assign(np.asarray(v, dtype=np.float32))


def set_dense(layer, weight: np.ndarray, bias: np.ndarray | None) -> None:
    vals = [weight.T]
    if bias is not None:
        vals.append(bias)
    _assign(layer, vals)


def set_conv1d(layer, weight: np.ndarray, bias: np.ndarray | None) -> None:
    """PyTorch Conv1d weight (out, in/groups, k) -> Keras Conv1D kernel (k, in/groups, out)."""
    vals = [np.transpose(weight, (2, 1, 0))]
    if bias is not None:
        vals.append(bias)
    _assign(layer, vals)


def set_layer_norm(layer, weight: np.ndarray, bias: np.ndarray) -> None:
    _assign(layer, [weight, bias])


def set_mha(layer, sd: dict, prefix: str, names=("q_proj", "k_proj", "v_proj", "out_proj")) -> None:
    """Load HF q/k/v/out projections into a ``keras.layers.MultiHeadAttention``. A missing key
    bias (Whisper) becomes zeros: a constant added to every key shifts all attention logits of a
    query equally and leaves the softmax unchanged."""
    q, k, v, o = names
    heads, head_dim = layer.num_heads, layer.key_dim
    hidden = sd[f"{prefix}.{q}.weight"].shape[1]

    def qkv(name):
        w = sd[f"{prefix}.{name}.weight"].T.reshape(hidden, heads, head_dim)
        b = sd.get(f"{prefix}.{name}.bias")
        b = np.zeros((heads, head_dim), np.float32) if b is None else b.reshape(heads, head_dim)
        return [w, b]

    _assign(layer._query_dense, qkv(q))
    _assign(layer._key_dense, qkv(k))
    _assign(layer._value_dense, qkv(v))
    w = sd[f"{prefix}.{o}.weight"].T.reshape(heads, head_dim, hidden)
    _assign(layer._output_dense, [w, sd[f"{prefix}.{o}.bias"]])


def blocks_by_name(model, prefix: str, n_layers: int, top: tuple[str, ...] = ()) -> list[list]:
    """Unfreezable blocks bottom to top: ``[front-end layers], [layer 0], ..., [layer N-1]``.

    Layers named ``{prefix}_l{i}_*`` form block ``i + 1``; names in ``top`` (a final layer norm)
    join the top block; every other layer with weights is the bottom (front-end) block.
    """
    blocks: list[list] = [[] for _ in range(n_layers + 1)]
    pat = re.compile(rf"^{re.escape(prefix)}_l(\d+)_")
    for layer in model.layers:
        if not layer.weights:
            continue
        m = pat.match(layer.name)
        if m:
            blocks[int(m.group(1)) + 1].append(layer)
        elif layer.name in top:
            blocks[-1].append(layer)
        else:
            blocks[0].append(layer)
    return blocks
