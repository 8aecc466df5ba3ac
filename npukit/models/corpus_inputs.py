"""Real inputs for the model corpus (`npukit.models.corpus`), all from installed packages.

- Photos: scikit-image's bundled pictures (`skimage.data`), as RGB uint8.
- Faces: crops around the two faces in those pictures (astronaut, cameraman), jittered in
  position and scale; eyes: crops around the astronaut's eyes.
- Click captchas: photo windows with glyphs pasted on them.
- Text: lines and pages rendered with PIL in the DejaVu fonts matplotlib ships (mixed case,
  digits, punctuation), and scikit-image's scanned page (`data.page()`).
- Audio: pocketsphinx-testdata's 16 kHz recordings (Debian), read by `datasets_audio`.

Every function is deterministic for a given `seed` and returns float32 arrays laid out as
the model's input (NHWC for TFLite, NCHW for ONNX), one sample per call.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

PHOTOS: tuple[str, ...] = ("astronaut", "camera", "coffee", "chelsea", "rocket", "horse", "coins", "clock")
# face boxes (x0, y0, x1, y1) in the 512x512 pictures, found with BlazeFace (front model)
FACES: dict[str, tuple[int, int, int, int]] = {"astronaut": (179, 82, 274, 177), "camera": (174, 120, 265, 211)}
EYES: tuple[tuple[int, int], ...] = ((207, 122), (248, 120))     # astronaut's eye centres (x, y)
CAPTCHA_CHARS = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CLICK_CHARS = "ABDEFGHKMNPRSTUWXYZ2345678#@&%"
WORDS: tuple[str, ...] = ("Invoice", "total", "NPU", "2026", "quantised", "Model", "kernel", "v4.2",
                          "accuracy", "Berlin", "OCR", "page", "12:45", "data", "Report", "cycles",
                          "int8", "sample", "Python", "latency", "#17", "layer", "output", "Main St.")


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """An RGB uint8 picture from scikit-image (grey ones repeated to three channels)."""
    from skimage import data
    img = np.asarray(getattr(data, name)())
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """float32 in [0, 1], resized with anti-aliasing."""
    from skimage.transform import resize as sk_resize
    x = img.astype(np.float32) / 255.0 if img.dtype == np.uint8 else img.astype(np.float32)
    return sk_resize(x, (height, width), anti_aliasing=True).astype(np.float32)


def square_crop(img: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """A side x side window centred at (cx, cy), edge-padded where it leaves the picture."""
    half, pad = side / 2, int(side)
    padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    x0, y0 = int(round(cx - half)) + pad, int(round(cy - half)) + pad
    return padded[y0:y0 + int(side), x0:x0 + int(side)]


def photo_nhwc(seed: int, size: int, lo: float = -1.0, hi: float = 1.0) -> np.ndarray:
    """[1, size, size, 3]: a random window (half to all of the short side) of a photo, in [lo, hi]."""
    rng = np.random.default_rng(seed)
    img = photo(PHOTOS[seed % len(PHOTOS)])
    h, w = img.shape[:2]
    side = rng.uniform(0.5, 1.0) * min(h, w)
    crop = square_crop(img, rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2), side)
    return (lo + (hi - lo) * resize(crop, size, size))[None]


def face_nhwc(seed: int, size: int, margin: float = 1.5, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """[1, size, size, 3]: a face (the box enlarged by `margin`, jittered), in [lo, hi]."""
    rng = np.random.default_rng(seed)
    name = sorted(FACES)[seed % len(FACES)]
    x0, y0, x1, y1 = FACES[name]
    side = (x1 - x0) * margin * rng.uniform(0.9, 1.15)
    cx, cy = (x0 + x1) / 2 + rng.normal(0, 6), (y0 + y1) / 2 + rng.normal(0, 6)
    return (lo + (hi - lo) * resize(square_crop(photo(name), cx, cy, side), size, size))[None]


def eye_nhwc(seed: int, size: int = 64) -> np.ndarray:
    """[1, size, size, 3] in [0, 1]: one of the astronaut's eyes, jittered (MediaPipe's iris input)."""
    rng = np.random.default_rng(seed)
    cx, cy = EYES[seed % len(EYES)]
    crop = square_crop(photo("astronaut"), cx + rng.normal(0, 2), cy + rng.normal(0, 2), rng.uniform(34, 44))
    if seed % 2:
        crop = crop[:, ::-1]          # MediaPipe feeds the other eye mirrored
    return resize(crop, size, size)[None]


def _font(size: int, bold: bool = False):
    from matplotlib import font_manager
    from PIL import ImageFont
    path = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans", weight="bold" if bold else "normal"))
    return ImageFont.truetype(path, size)


def text_line(seed: int) -> tuple[str, np.ndarray]:
    """(text, RGB uint8 image) of a rendered line of 2-4 words, dark on light, tight crop."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    words = [WORDS[i] for i in rng.choice(len(WORDS), int(rng.integers(2, 5)), replace=False)]
    text = " ".join(words)
    font = _font(int(rng.integers(26, 36)), bold=bool(seed % 3 == 0))
    x0, y0, x1, y1 = font.getbbox(text)
    ink, paper = int(rng.integers(0, 60)), int(rng.integers(200, 256))
    img = Image.new("RGB", (x1 - x0 + 16, y1 - y0 + 12), (paper,) * 3)
    ImageDraw.Draw(img).text((8 - x0, 6 - y0), text, font=font, fill=(ink,) * 3)
    return text, np.asarray(img)


def ocr_line_nchw(seed: int, height: int = 48, width: int = 320, rotate: bool = False) -> np.ndarray:
    """[1, 3, height, width]: a text line resized to `height` keeping its aspect, right-padded
    with zeros, (x/255 - 0.5)/0.5 as PaddleOCR's recogniser and classifier take it; turned
    upside down when `rotate`."""
    _, img = text_line(seed)
    if rotate:
        img = img[::-1, ::-1]
    h, w = img.shape[:2]
    new_w = min(width, int(np.ceil(height * w / h)))
    x = (resize(img, height, new_w) - 0.5) / 0.5
    out = np.zeros((3, height, width), np.float32)
    out[:, :, :new_w] = x.transpose(2, 0, 1)
    return out[None]


def captcha(seed: int, height: int = 64, width: int = 192) -> tuple[str, np.ndarray]:
    """(text, [1, 1, height, width] in [0, 1]): five letters and digits drawn in grey, as
    ddddocr takes a captcha (grey, /255)."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    text = "".join(rng.choice(list(CAPTCHA_CHARS), 5))
    img = Image.new("L", (width, height), int(rng.integers(200, 250)))
    ImageDraw.Draw(img).text((int(rng.integers(4, 20)), int(rng.integers(2, 12))), text,
                             font=_font(int(rng.integers(34, 40))), fill=int(rng.integers(0, 60)))
    return text, (np.asarray(img, np.float32) / 255.0)[None, None]


def captcha_nchw(seed: int) -> np.ndarray:
    return captcha(seed)[1]


def click_captcha_nchw(seed: int, size: int = 416) -> np.ndarray:
    """[1, 3, size, size] BGR pixel values in [0, 255], as ddddocr's detector takes a click
    captcha: a photo window with four letters, digits or signs pasted on it, each in its own
    colour, size and angle."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    img = photo(PHOTOS[seed % len(PHOTOS)])
    h, w = img.shape[:2]
    side = rng.uniform(0.5, 1.0) * min(h, w)
    crop = square_crop(img, rng.uniform(side / 2, w - side / 2), rng.uniform(side / 2, h - side / 2), side)
    pic = Image.fromarray((resize(crop, size, size) * 255).astype(np.uint8))
    cell = size // 5
    for k in range(4):
        glyph = Image.new("L", (cell, cell), 0)
        ImageDraw.Draw(glyph).text((cell // 2, cell // 2), CLICK_CHARS[int(rng.integers(len(CLICK_CHARS)))], fill=255,
                                   anchor="mm", font=_font(int(rng.integers(40, 62)), bold=True))
        glyph = glyph.rotate(float(rng.uniform(-40, 40)), resample=Image.Resampling.BILINEAR)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        at = (int(cell // 4 + k * cell + rng.integers(0, cell // 4)), int(rng.integers(cell // 4, size - cell)))
        pic.paste(Image.new("RGB", (cell, cell), colour), at, glyph)
    return np.asarray(pic, np.float32)[:, :, ::-1].transpose(2, 0, 1)[None].copy()


def document(seed: int, height: int = 800, width: int = 608) -> np.ndarray:
    """An RGB uint8 page: a title, paragraphs of rendered words, a ruled table, a photo figure."""
    from PIL import Image, ImageDraw
    rng = np.random.default_rng(seed)
    page = Image.new("RGB", (width, height), (250, 250, 248))
    draw = ImageDraw.Draw(page)
    y = int(rng.integers(20, 50))
    draw.text((40, y), " ".join(rng.choice(WORDS, 3)), font=_font(30, bold=True), fill=(10, 10, 10))
    y += 60
    body = _font(int(rng.integers(14, 18)))
    for block in range(3):
        if block == int(rng.integers(0, 3)):
            fig = photo(PHOTOS[int(rng.integers(0, len(PHOTOS)))])
            fw = int(rng.integers(width // 3, width // 2))
            fh = int(fw * fig.shape[0] / fig.shape[1])
            small = (resize(fig, fh, fw) * 255).astype(np.uint8)
            page.paste(Image.fromarray(small), (int(rng.integers(40, width - fw - 40)), y))
            y += fh + 20
        elif block == 2:
            for r in range(5):
                for c in range(3):
                    draw.rectangle((40 + c * 160, y + r * 26, 200 + c * 160, y + (r + 1) * 26), outline=(0, 0, 0))
                    draw.text((46 + c * 160, y + r * 26 + 5), str(rng.choice(WORDS)), font=body, fill=(0, 0, 0))
            y += 150
        else:
            for _ in range(int(rng.integers(4, 8))):
                draw.text((40, y), " ".join(rng.choice(WORDS, 7)), font=body, fill=(20, 20, 20))
                y += 22
            y += 16
        if y > height - 120:
            break
    return np.asarray(page)


def det_nchw(seed: int, size: int = 320) -> np.ndarray:
    """[1, 3, size, size]: a rendered page or scikit-image's scanned page / text photo, resized,
    ImageNet-normalised as PaddleOCR's detector takes it."""
    from skimage import data
    sources = (lambda: document(seed, 608, 608), lambda: np.repeat(np.asarray(data.page())[:, :, None], 3, 2),
               lambda: np.repeat(np.asarray(data.text())[:, :, None], 3, 2))
    x = resize(sources[seed % 3](), size, size)
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def layout_nchw(seed: int, height: int = 800, width: int = 608) -> np.ndarray:
    """[1, 3, height, width]: a rendered page, /255 and ImageNet-normalised (rapid-layout's PP
    preprocessing)."""
    x = resize(document(seed, height, width), height, width)
    x = (x - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def speech(seconds: float = 2.0) -> list[np.ndarray]:
    """float32 16 kHz clips in [-1, 1] from pocketsphinx-testdata, `seconds` long each."""
    from .datasets_audio import pocketsphinx_recordings
    recs = pocketsphinx_recordings()
    n = int(seconds * 16000)
    return [np.asarray(recs[k], np.float32)[:n] for k in sorted(recs) if len(recs[k]) >= n]


def pitch_window(seed: int, samples: int = 43844, rate: int = 22050) -> np.ndarray:
    """[1, samples, 1] float32: basic-pitch's 2 s window at 22.05 kHz, cut from the
    pocketsphinx recordings (calibration seeds < 1000 from every other file, evaluation seeds
    from the others)."""
    from .datasets_audio import pocketsphinx_recordings, resample
    recs = pocketsphinx_recordings()
    names = sorted(recs)[0 if seed < 1000 else 1::2]
    audio = resample(recs[names[seed % len(names)]], 16000, rate)[:samples]
    return np.pad(audio, (0, samples - len(audio)))[None, :, None].astype(np.float32)


def file_bytes(seed: int) -> np.ndarray:
    """[1, 2048] int32: Magika's view of a file installed here (Python sources, scikit-image's
    pictures, numpy's shared libraries and headers, ...): its first and last 1024 bytes with
    the surrounding whitespace stripped, padded with token 256."""
    data = _magika_files()[seed % len(_magika_files())].read_bytes()
    stripped = data.strip()
    beg = np.full(1024, 256, np.int32)
    end = np.full(1024, 256, np.int32)
    head = np.frombuffer(stripped[:1024], np.uint8)
    tail = np.frombuffer(stripped[-1024:], np.uint8) if stripped else head
    beg[:len(head)] = head
    end[1024 - len(tail):] = tail
    return np.concatenate([beg, end])[None]


@lru_cache(maxsize=1)
def _magika_files() -> tuple[Path, ...]:
    """Installed files of several kinds in a fixed order (the same on every machine with
    the test extras), alternating kinds so consecutive seeds differ in type."""
    import json
    import os

    import numpy
    import skimage
    kinds = [sorted(Path(json.__file__).parent.glob("*.py")),
             sorted((Path(skimage.__file__).parent / "data").glob("*.png")),
             sorted(Path(numpy.__file__).parent.glob("_core/*.so")),
             sorted(Path(numpy.__file__).parent.glob("_core/include/numpy/*.h")),
             sorted(Path(os.__file__).parent.glob("*.txt")) + sorted(Path(numpy.__file__).parent.glob("*.pyi"))]
    kinds = [k for k in kinds if k]
    out: list[Path] = []
    for i in range(max(len(k) for k in kinds)):
        out.extend(k[i] for k in kinds if i < len(k))
    return tuple(out)
