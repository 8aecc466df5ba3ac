"""silero-vad: `If` folded, the STFT front (reflect pad, 16x8 basis conv, magnitude), the
convolutions, the LSTM (TFLite's integer LSTM) and the state's slices and concat (int16) on
the NPU, nothing on the host; the speech decision agrees with onnxruntime frame by frame on
real recordings and on noise."""
import numpy as np
import pytest

from workload_util import need_data
from npukit.testing.fixtures import real_model

FILES = ("cards/002.wav", "goforward.raw", "tidigits/dhd.2934z.raw")


@pytest.fixture(scope="module")
def clips():
    from npukit.models.datasets_audio import DataMissingError, coloured_noise, pocketsphinx_recordings
    try:
        recs = pocketsphinx_recordings()
    except DataMissingError as exc:
        need_data(exc)
    calib = [recs[n] for n in sorted(recs)[::2]]
    evaluate = {n: recs[n] for n in FILES}
    evaluate["noise"] = 0.05 * coloured_noise(32000, "pink", np.random.default_rng(0))
    return calib, evaluate


@pytest.mark.parametrize("name", ["silero-vad-16k", "silero-vad"])
def test_speech_decisions_agree_with_onnxruntime(name, clips):
    import silero
    path = real_model(name)
    calib, evaluate = clips
    prog = silero.compile_silero(path, "npu-m", silero.calibration_feeds(path, calib, n=48), "percentile")
    where = silero.placement(prog)
    assert where["npu"].get("conv2d", 0) >= 6                 # STFT basis, encoder and decoder convolutions
    assert where["npu"].get("magnitude") == 1 and where["npu"].get("pad") == 1
    assert not any(op.startswith(("conv2d", "magnitude", "pad", "Pad", "Pow", "Sqrt", "Conv")) for op in where["host"])
    assert prog.qgraph.tensors["input"].dtype.value == "int16"
    assert any(getattr(i, "in_bytes", 1) == 2 for i in prog.program.instructions)   # the 16x8 basis conv
    assert where["npu"].get("lstm") == 1 and "LSTM (float)" not in where["host"]
    assert where["host"] == {}, where["host"]
    assert prog.qgraph.tensors["state"].dtype.value == prog.qgraph.tensors["stateN"].dtype.value == "int16"
    ref, npu = silero.onnxruntime_step(path), silero.npu_step(prog)
    same = total = 0
    for audio in evaluate.values():
        pf, _ = silero.stream(ref, audio)
        pq, _ = silero.stream(npu, audio)
        same += int(np.sum((pf > 0.5) == (pq > 0.5)))
        total += len(pf)
    assert same / total >= 0.98, same / total
