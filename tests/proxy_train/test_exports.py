"""Exports: ONNX checked with onnxruntime, and a safetensors checkpoint under timm's names.

Every export goes through ``nas-arch export`` in-process. The model file is a tiny network
with every timm block type whose BatchNorm statistics were calibrated on random images, so
its logits are of order one (a freshly initialised network's are ~1e-6, which any graph
would match to 1e-4) and its EMA and final weights give different outputs.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from nas.cli.arch import main
from proxy_train import onnx_export
from proxy_train.errors import ExportError
from proxy_train.model_file import load_model, save_model
from search_space.codec import decode, encode
from search_space.model import build_model
from search_space.timm_keys import timm_state_dict

GOLDEN = Path(__file__).parents[1] / "search_space" / "golden" / "timm_keys.json"
SPEC = decode(json.loads(GOLDEN.read_text())["specs"]["mixed"]["arch"])  # cn, er, ir, ds
SIZE = 32


def calibrated(seed: int) -> dict[str, torch.Tensor]:
    """Weights whose BatchNorm statistics match their activations, as after training."""
    torch.manual_seed(seed)
    model = build_model(SPEC, dropout=0.0, drop_path=0.0)
    for bn in model.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            bn.reset_running_stats()
            bn.momentum = None  # a plain average over the calibration batches
    with torch.no_grad():
        model.train()(torch.randn(16, 3, SIZE, SIZE))
    return model.state_dict()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("trained") / "model.pt"
    return save_model(path, SPEC, num_classes=SPEC.num_classes, eval_size=SIZE,
                      model=calibrated(1), ema=calibrated(2))


def logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def test_onnx_of_a_model_file_gives_its_ema_logits(model_file: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")  # the optional extra onnx
    out = tmp_path / "onnx" / "model.onnx"
    assert main(["export", str(model_file), "--format", "onnx", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "(ema weights)" in printed.out and "max abs difference" in printed.out
    # progress goes to stderr: stdout holds results only
    assert "exporting with torch.onnx" in printed.err and "checking with" in printed.err
    assert "exporting" not in printed.out and "checking" not in printed.out
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, outp.name) == ("images", ["batch", 3, SIZE, SIZE], "logits")
    x = np.random.default_rng(0).standard_normal((5, 3, SIZE, SIZE)).astype(np.float32)
    got = session.run(None, {"images": x})[0]
    trained = load_model(model_file)
    ema, final = logits(trained.build("ema"), x), logits(trained.build("final"), x)
    assert np.abs(ema).max() > 0.1  # the check below is not trivially met
    assert np.abs(got - ema).max() <= 1e-4
    assert np.abs(got - final).max() > 1e-2  # EMA, not the final weights
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["effnas.arch"] == encode(SPEC) and meta["effnas.weights"] == "ema"
    assert list(out.parent.iterdir()) == [out]  # no temporary or external-data file


def test_onnx_of_an_architecture_with_a_fixed_batch(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")  # the optional extra onnx
    out = tmp_path / "fixed.onnx"
    arch = "stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls3"
    assert main(["export", arch, "--format", "onnx", "--out", str(out), "--resolution", "24",
                 "--batch", "2", "--num-classes", "5"]) == 0
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == [2, 3, 24, 24]
    assert session.get_outputs()[0].shape == [2, 5]
    meta = session.get_modelmeta().custom_metadata_map
    assert meta["effnas.weights"] == "random init" and meta["effnas.arch"].endswith("-cls5")


def test_a_failed_onnx_check_fails_the_export_and_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")
    real = torch.onnx.export

    def export_then_drift(model: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        program = real(model, *args, **kwargs)
        with torch.no_grad():  # the graph now disagrees with the model, as a broken exporter's
            model.classifier.bias.add_(1e-3)
        return program

    monkeypatch.setattr(torch.onnx, "export", export_then_drift)
    model = build_model(decode("stem8-fused_r1_k3_s2_e1_c8-head16-cls2"))
    with pytest.raises(ExportError, match=r"max abs difference 0.001 .* exceeds 0.0001"):
        onnx_export.export_onnx(model, tmp_path / "bad.onnx", resolution=16)
    assert list(tmp_path.iterdir()) == []


def test_without_the_onnx_extra_the_error_names_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    real = importlib.import_module

    def no_onnxruntime(name: str, *args: Any) -> Any:
        if name == "onnxruntime":
            raise ModuleNotFoundError("No module named 'onnxruntime'", name="onnxruntime")
        return real(name, *args)

    monkeypatch.setattr(onnx_export.importlib, "import_module", no_onnxruntime)
    out = tmp_path / "m.onnx"
    assert main(["export", "efficientnetv2-b0", "--format", "onnx", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: ONNX export needs the optional extra 'onnx' (missing module "
                   "'onnxruntime'): pip install -e '.[onnx]' in the effnas clone\n")
    assert not out.exists()


def test_timm_checkpoint_holds_the_weights_under_timms_names(
        model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trained = load_model(model_file)
    for weights in ("ema", "final"):
        out = tmp_path / f"{weights}.safetensors"
        extra = [] if weights == "ema" else ["--weights", "final"]
        assert main(["export", str(model_file), "--format", "timm-weights",
                     "--out", str(out), *extra]) == 0
        saved = load_file(out)
        expected = timm_state_dict(SPEC, trained.state_dict(weights))
        assert sorted(saved) == sorted(expected)  # safetensors keeps its own order
        assert all(torch.equal(saved[k], expected[k]) for k in expected)
        with safe_open(str(out), framework="pt") as handle:
            meta = handle.metadata()
        assert meta["arch"] == encode(SPEC) and meta["effnas.weights"] == weights
        printed = capsys.readouterr().out
        assert f"model.load_state_dict(load_file({str(out)!r}), strict=True)" in printed


def test_timm_header_names_every_setting_a_reader_needs(model_file: Path,
                                                       tmp_path: Path) -> None:
    out = tmp_path / "m.safetensors"
    assert main(["export", str(model_file), "--format", "timm-weights", "--out", str(out)]) == 0
    with safe_open(str(out), framework="pt") as handle:
        meta = handle.metadata()
    kwargs = json.loads(meta["timm_kwargs"])
    layers = json.loads(meta["timm_layers"])
    # Plain kwargs pass to EfficientNet as they are: no callable written as a string.
    assert kwargs == {"stem_size": SPEC.stem_channels, "fix_stem": True,
                      "num_features": SPEC.head_channels, "num_classes": SPEC.num_classes}
    assert layers == {"round_chs_fn": "builtins.int", "act_layer": "torch.nn.SiLU",
                      "norm_layer": "torch.nn.BatchNorm2d", "norm_kwargs": {"eps": 1e-3}}

    def resolve(path: str) -> Any:
        module, _, name = path.rpartition(".")
        return getattr(importlib.import_module(module), name)

    assert resolve(layers["round_chs_fn"]) is int
    assert resolve(layers["act_layer"]) is torch.nn.SiLU
    assert resolve(layers["norm_layer"]) is torch.nn.BatchNorm2d
    assert json.loads(meta["timm_arch_def"])[0][0].startswith(("cn", "er", "ir", "ds"))


def test_a_search_best_json_exports_at_the_runs_size(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    pytest.importorskip("onnxruntime")
    best = tmp_path / "best.json"
    best.write_text(json.dumps({"arch": encode(SPEC), "provenance": {"timing_resolution": 40}}))
    out = tmp_path / "best.onnx"
    assert main(["export", str(best), "--format", "onnx", "--out", str(out)]) == 0
    assert "input images [batch, 3, 40, 40]" in capsys.readouterr().out
    assert main(["export", str(best), "--format", "onnx", "--out", str(out),
                 "--resolution", "24"]) == 0  # told: the given size
    assert "input images [batch, 3, 24, 24]" in capsys.readouterr().out


def test_timm_loads_the_checkpoint_and_gives_our_logits(
        model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Runs where timm is importable (a GPU machine, a user's machine); skipped otherwise."""
    pytest.importorskip("timm")
    out = tmp_path / "timm.safetensors"
    assert main(["export", str(model_file), "--format", "timm-weights", "--out", str(out)]) == 0
    snippet = capsys.readouterr().out.split("load it with timm:\n", 1)[1]
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "snippet", "exec"), namespace)  # the printed snippet, verbatim
    x = np.random.default_rng(1).standard_normal((3, 3, SIZE, SIZE)).astype(np.float32)
    ours = logits(load_model(model_file).build("ema"), x)
    theirs = logits(namespace["model"], x)
    assert np.abs(ours).max() > 0.1
    assert np.abs(theirs - ours).max() <= 1e-5


@pytest.mark.parametrize(("args", "message"), [
    (["--format", "onnx"], "--format onnx needs --out FILE"),
    (["--format", "onnx", "--out", "{out}", "--batch", "0"], "--batch '0' must be 'dynamic'"),
    (["--format", "onnx", "--out", "{out}", "--resolution", "0"], "--resolution 0 must be >= 1"),
    (["--format", "timm-weights", "--out", "{out}", "--num-classes", "7"],
     "--num-classes 7 does not match the model file's 10 classes"),
])
def test_bad_export_options_give_one_line(model_file: Path, tmp_path: Path, args: list[str],
                                          message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    argv = ["export", str(model_file), *[a.replace("{out}", str(out)) for a in args]]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()


def test_weights_of_an_architecture_or_a_corrupt_model_file_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never.safetensors"
    assert main(["export", "efficientnetv2-b0", "--format", "timm-weights", "--out", str(out),
                 "--weights", "final"]) == 2
    assert "apply to a model file" in capsys.readouterr().err
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["export", str(broken), "--format", "timm-weights", "--out", str(out)]) == 2
    assert "is not a readable model file" in capsys.readouterr().err
    fused_se = "stem16-fused_r1_k3_s1_e1_c16_se0.25-head32-cls10"
    assert main(["export", fused_se, "--format", "timm-weights", "--out", str(out)]) == 2
    printed = capsys.readouterr()
    assert printed.out == "" and "not expressible in timm" in printed.err
    assert not out.exists()
