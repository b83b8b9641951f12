"""The README.md written beside an export: what the graph takes and gives, what the caller must do
before it (the lines of ``outside``), and a runnable example in the format's own runtime."""

from __future__ import annotations

import json

__all__ = ["readme", "shape_text"]


def shape_text(shape) -> str:
    """``[None, None, 3]`` as ``(batch, n, 3)``: n is a size the caller picks."""
    return "(" + ", ".join("batch" if i == 0 and d is None else ("n" if d is None else str(d))
                           for i, d in enumerate(shape)) + ")"

_LOAD = {
    "onnx": '''import onnxruntime

session = onnxruntime.InferenceSession("model.onnx", providers=["CPUExecutionProvider"])
def probabilities(inputs):  # {input name: array}
    return session.run(None, inputs)[0]''',
    "tflite": '''try:
    from ai_edge_litert.interpreter import Interpreter  # pip install ai-edge-litert
except ImportError:
    from tensorflow.lite import Interpreter

runner = Interpreter(model_path="model.tflite").get_signature_runner()
def probabilities(inputs):  # {input name: array}
    return next(iter(runner(**inputs).values()))''',
    "saved_model": '''import tensorflow as tf

model = tf.saved_model.load("saved_model")
def probabilities(inputs):  # {input name: array}
    inputs = inputs if len(inputs) > 1 else next(iter(inputs.values()))
    return model.serve(inputs).numpy()''',
}

_IMAGE = '''import numpy as np
from PIL import Image

def load(path):  # as automl-tl reads an image: RGB, {s}x{s} bilinear, {dtype} 0-255
    return np.asarray(Image.open(path).convert("RGB").resize(({s}, {s}), Image.BILINEAR), dtype=np.{dtype})

paths = ["photo.jpg"]  # your images
inputs = {{"{name}": np.stack([load(p) for p in paths])}}'''

_TEXT = '''import numpy as np
from tokenizers import Tokenizer

tokenizer = Tokenizer.from_file("assets/{tokenizer}")
tokenizer.no_padding()
tokenizer.enable_truncation(max_length={length})
texts = ["A gorgeous, witty, seductive movie."]  # your texts
ids = [e.ids or [{pad}] for e in tokenizer.encode_batch(texts)]
width = max(map(len, ids))
token_ids = np.full((len(ids), width), {pad}, dtype=np.int32)
padding_mask = np.zeros((len(ids), width), dtype=np.int32)
for i, row in enumerate(ids):
    token_ids[i, :len(row)], padding_mask[i, :len(row)] = row, 1
inputs = {{"token_ids": token_ids, "padding_mask": padding_mask}}{segments}'''

_AUDIO = '''import numpy as np
import soundfile
from scipy.signal import resample_poly

def load(path, rate={rate}, samples={samples}):  # mono float32 at {rate} Hz, first {secs:g} s, zero-padded
    wav, source_rate = soundfile.read(path, dtype="float32", always_2d=True)
    wav = resample_poly(wav.mean(axis=1), rate, source_rate).astype(np.float32)[:samples]
    return np.pad(wav, (0, samples - len(wav)))

paths = ["clip.wav"]  # your recordings
inputs = {{"{name}": np.stack([load(p) for p in paths])}}'''

_EXACT = '''# exactly as automl-tl prepares them (needs automl-tl and the run directory):
from automl_tl.artifacts import load_predictor
batch = load_predictor("{run}").adapter(your_items)
inputs = batch if isinstance(batch, dict) else {{"{name}": batch}}'''


def _prepare(conf: dict, inputs: list[dict], run: str) -> str:
    """The example's input preparation from the adapter's configuration; where no standalone code
    is given (Whisper log-mel features, an unknown adapter), automl-tl's own adapter."""
    name = inputs[0]["name"]
    exact = _EXACT.format(run=run, name=name)
    if "image_size" in conf:
        return _IMAGE.format(s=int(conf.get("source_size", conf["image_size"])), name=name,
                             dtype="uint8" if "source_size" in conf else "float32") + "\n\n" + _commented(exact)
    if "tokenizer" in conf:
        segments = ('\ninputs["segment_ids"] = np.zeros_like(token_ids)' if conf.get("segment_ids") else "")
        return _TEXT.format(tokenizer=conf["tokenizer"], length=int(conf["sequence_length"]),
                            pad=int(conf["pad_id"]), segments=segments) + "\n\n" + _commented(exact)
    if "sample_rate" in conf and conf.get("frontend", "raw") == "raw":
        rate, secs = int(conf["sample_rate"]), float(conf.get("duration", 1.0))
        return _AUDIO.format(rate=rate, secs=secs, samples=int(round(rate * secs)), name=name) + "\n\n" + \
            _commented(exact)
    return exact


def _commented(code: str) -> str:
    return "\n".join(line if line.startswith("#") else f"# {line}" for line in code.splitlines())


def readme(*, fmt: str, model_file: str, runtime: str, inputs: list[dict], classes: list[str], outside: list[str],
           notes: list[str], check: dict, adapter: dict, run: str, backbone: str, members: list[str],
           weights: list[float], temperature: float, classes_file: str) -> str:
    """The README.md of an export (plain Markdown; the Python block runs as it stands once the
    placeholders name real inputs)."""
    rows = "\n".join(f"| `{i['name']}` | {shape_text(i['shape'])} | {i['dtype']} |" for i in inputs)
    what = f"the model delivered by the run `{run}` ({backbone}"
    what += (f", averaged with {len(members)} ensemble member(s): {', '.join(members)}; weights "
             f"{', '.join(f'{w:.3g}' for w in weights)}" if members else "")
    what += f", calibrated with temperature {temperature:.4g}" if temperature != 1.0 else ""
    checked = (f"Checked after conversion: on {check['items']} validation item(s) of the run, {runtime} gave "
               f"probabilities within {check['max_abs_diff']:.2g} of the Keras model."
               if check.get("ran") else f"Not checked after conversion: {check.get('why', 'no items')}.")
    example = "\n\n".join([_prepare(adapter, inputs, run), _LOAD[fmt], f'''import json

classes = json.load(open("{classes_file}"))
p = probabilities(inputs)
for row in p:
    print(classes[int(row.argmax())], float(row.max()))'''])
    note_lines = "".join(f"- {n}\n" for n in notes)
    return f"""# {fmt} export (automl-tl)

`{model_file}` is {what}) as a {fmt} graph, for {runtime}. Written by `automl-tl export`; the next
export to this folder replaces it whole (and refuses while it holds a file export did not write).

## Input

| name | shape (n: any size) | dtype |
|---|---|---|
{rows}

## Output

Class probabilities, shape (batch, {len(classes)}), in the order of `{classes_file}`:
{json.dumps(classes, ensure_ascii=False)}

## Outside the graph (yours to do)

{"".join(f"- {line}" + chr(10) for line in outside)}{note_lines}
{checked}

## Example

```python
{example}
```
"""
