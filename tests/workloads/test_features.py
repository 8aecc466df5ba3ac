"""The MFCC front end against scipy's DCT and a direct per-frame computation."""
import numpy as np
import pytest
from scipy.fft import dct

from npukit.errors import InputError
from npukit.models.features import MfccConfig, dct_matrix, mel_filterbank, mfcc


def test_dct_matrix_is_scipy_orthonormal_dct2():
    x = np.random.default_rng(0).standard_normal((5, 40))
    np.testing.assert_allclose(x @ dct_matrix(40, 10).T, dct(x, type=2, norm="ortho", axis=1)[:, :10], atol=1e-10)


def test_mfcc_matches_a_frame_by_frame_computation():
    cfg = MfccConfig()
    audio = np.random.default_rng(1).standard_normal(16000).astype(np.float32) * 0.1
    got = mfcc(audio, cfg)
    assert got.shape == (49, 10)
    fb = mel_filterbank(cfg)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(480) / 480)
    for t in (0, 17, 48):
        frame = audio[t * 320: t * 320 + 480].astype(np.float64) * window
        power = np.abs(np.fft.rfft(frame, 512)) ** 2
        want = dct(np.log(fb @ power + 1e-6), type=2, norm="ortho")[:10]
        np.testing.assert_allclose(got[t], want, rtol=1e-4, atol=1e-4)


def test_filterbank_triangles_peak_at_one_inside_the_band():
    fb = mel_filterbank(MfccConfig())
    assert fb.shape == (40, 257)
    assert np.all(fb.max(axis=1) > 0.5) and np.all(fb <= 1.0)
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    assert not fb[:, freqs > 4000].any() and not fb[:, freqs < 20].any()


def test_short_audio_is_a_clear_error():
    with pytest.raises(InputError, match="shorter than one frame"):
        mfcc(np.zeros(100, np.float32))
