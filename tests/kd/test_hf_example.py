"""examples/hf_sequence_classification.py runs: a real transformers student,
dict items padded by DataCollatorWithPadding, a ModelOutput, cached teacher
logits keyed by string ids, one model instance for both arms, a test split."""

import importlib.util
import os

import numpy as np
import pytest

import kdmetrics

from _kd_torch import torch

if os.environ.get("CI") == "true":
    import transformers  # CI installs the test extra: a missing transformers must fail
else:
    transformers = pytest.importorskip("transformers")

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "examples", "hf_sequence_classification.py"
)


def load_example():
    spec = importlib.util.spec_from_file_location("hf_sequence_classification", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hf_example_distils_into_a_transformers_model(tmp_path, capsys):
    torch.set_num_threads(1)
    ex = load_example()
    out = tmp_path / "hf"
    args = ["--out", str(out), "--n-train", "48", "--n-val", "24", "--n-test", "24",
            "--epochs", "1", "--batch-size", "16", "--device", "cpu", "--no-progress"]  # fmt: skip
    results = ex.main(args)
    van, kd = results["vanilla"], results["distilled"]
    assert isinstance(kd.model, transformers.BertForSequenceClassification)
    assert van.model is not kd.model and van.init_sha256 == kd.init_sha256
    assert van.history[0]["step"] == kd.history[0]["step"] == 3  # 48 / 16 optimizer steps
    assert np.isfinite(kd.history[0]["train_kl"]) and "train_kl" not in van.history[0]
    for res in (van, kd):
        val = kdmetrics.load_predictions(res.predictions_path)
        test = kdmetrics.load_predictions(res.test_predictions_path)
        assert val.ids[0] == "val-00000" and test.ids[0] == "test-00000"
        assert test.metadata["selected_on"] == "val" and test.logits.shape == (24, 6)
        assert "teacher_agreement" in res.best_metrics
    assert "T" not in kdmetrics.load_predictions(van.predictions_path).metadata
    assert "test (held out)" in capsys.readouterr().out


def test_hf_example_tokenizer_is_built_locally():
    ex = load_example()
    words, per_class = ex.make_vocabulary(3, keywords=2, filler=4)
    tok = ex.build_tokenizer(words)
    enc = tok("c1_0 w3 unknownword")
    assert tok.convert_ids_to_tokens(enc["input_ids"]) == ["[CLS]", "c1_0", "w3", "[UNK]", "[SEP]"]
