"""Small helpers shared by the text parity tests (a module name no other test folder uses)."""

from __future__ import annotations

#: review snippets a tokenizer is trained on in the parity tests (times four: each word seen often)
REVIEWS = [
    "A gorgeous, witty, seductive movie.", "Dull and lifeless.", "It's a lot of running around and "
    "not much else.", "The acting is superb and the story moves along nicely.", "Bad, bad, bad.",
    "A charming little film about friendship and loss.", "Nothing new here: same jokes, same plot.",
]


def to_numpy(x):
    import keras

    return keras.ops.convert_to_numpy(x)


def perturb(model, scale=0.1):
    """Every parameter of a transformers (PyTorch) model moved by seeded noise, so that a swapped or
    mis-transposed weight shows in a parity check; the model in eval mode."""
    import torch

    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()
