"""model.pt: final and EMA weights with the architecture, loadable with weights_only."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from proxy_train.errors import DataError
from proxy_train.model_file import load_model, save_model
from search_space.codec import decode
from search_space.model import build_model

SPEC = decode("stem8-fused_r1_k3_s2_e1_c8-mbconv_r1_k3_s2_e2_c16_se0.25-head32-cls3")


def test_round_trip_builds_the_same_network(tmp_path: Path) -> None:
    torch.manual_seed(0)
    final, ema = build_model(SPEC).eval(), build_model(SPEC).eval()
    path = save_model(tmp_path / "out" / "model.pt", SPEC, num_classes=3, eval_size=24,
                      model=final.state_dict(), ema=ema.state_dict(), meta={"seed": 1})
    loaded = load_model(path.parent)  # a folder means its model.pt
    assert (loaded.spec, loaded.num_classes, loaded.eval_size) == (SPEC, 3, 24)
    assert loaded.meta == {"seed": 1}
    x = torch.randn(2, 3, 24, 24)
    with torch.no_grad():
        assert torch.equal(loaded.build("final")(x), final(x))
        assert torch.equal(loaded.build()(x), ema(x))  # EMA by default
    assert not list(tmp_path.glob("out/.model.pt.*"))  # no temporary file left


def test_without_ema_the_final_weights_serve(tmp_path: Path) -> None:
    model = build_model(SPEC)
    save_model(tmp_path / "m.pt", SPEC, num_classes=3, eval_size=16, model=model.state_dict())
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.ema is None and loaded.state_dict("ema") is loaded.model


@pytest.mark.parametrize(("content", "message"), [
    (None, "not found"),
    (b"garbage", "is not a readable model file"),
    ({"format": "other"}, "is not an effnas model file"),
    ({"format": "effnas.model", "version": 9}, "version 9 not supported"),
    ({"format": "effnas.model", "version": 1, "arch": "nonsense"}, "malformed model file"),
])
def test_bad_files_are_one_clear_error(tmp_path: Path, content: object, message: str) -> None:
    path = tmp_path / "model.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(DataError, match=message):
        load_model(path)
