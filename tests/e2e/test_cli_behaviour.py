"""The command line keeps its promise: usage mistakes are one `error:` line with a hint and
exit 2, choices are checked while parsing, output folders are made before any work, TOML
typos are named with the close match, tables fit the terminal, small numbers read in
cycles and microseconds, and warnings are one clean line."""
from __future__ import annotations

import itertools

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import npukit
from npukit.arch import load_arch
from npukit.testing.fixtures import run_cli

ROOT = Path(__file__).resolve().parents[2]
DIGITS = ROOT / "examples" / "digits" / "digits_cnn.onnx"
SHAPE = ("--input-shape", "x=1,1,8,8")


def npukit_cli(*args, columns: int | None = None):
    env = {**os.environ}
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = str(columns)
    return run_cli(*args, timeout=300, cwd=ROOT, env=env)


def one_error_line(r) -> str:
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    d = tmp_path_factory.mktemp("behaviour")
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.random((8, 1, 1, 8, 8), dtype=np.float32))
    np.save(d / "x.npy", rng.random((1, 1, 8, 8), dtype=np.float32))
    r = npukit_cli("compile", DIGITS, *SHAPE, "--calib", d / "calib.npz", "-o", d / "m.npub")
    assert r.returncode == 0, r.stderr
    return d, r


def test_version():
    r = npukit_cli("--version")
    assert r.returncode == 0 and r.stdout == f"npukit {npukit.__version__}\n" and not r.stderr


def test_help_lists_every_command_with_its_whole_summary():
    """Each command's line is its docstring's first paragraph, not a sentence cut at the width."""
    from npukit.cli import app
    r = npukit_cli("--help", columns=80)
    assert r.returncode == 0 and not r.stderr
    listed = "".join(r.stdout.split("Commands:")[1].split())
    for command in app.registered_commands:
        assert command.callback is not None and command.callback.__doc__
        summary = command.callback.__doc__.split("\n\n")[0]
        assert f"{command.name or command.callback.__name__}{''.join(summary.split())}" in listed, summary


def test_no_arguments_prints_the_help_and_exits_2():
    r = npukit_cli()
    assert r.returncode == 2 and not r.stderr and r.stdout == npukit_cli("--help").stdout
    assert r.stdout.startswith("Usage: npukit [OPTIONS] COMMAND")


@pytest.mark.parametrize("args, help_of", [
    (("compile",), "npukit compile"),                       # missing argument
    (("no-such-command",), "npukit"),                       # unknown command
    (("compile", DIGITS, "--frob"), "npukit compile"),      # unknown option
    (("profile", DIGITS, "--arch"), "npukit profile"),      # option without its value
])
def test_usage_mistake_is_one_line_with_a_hint(args, help_of):
    assert one_error_line(npukit_cli(*args)).endswith(f"(see {help_of} --help)")


@pytest.mark.parametrize("option, allowed", [("--dataflow", "'ws'"), ("--calib-method", "'percentile'"),
                                             ("--compress-weights", "'never'"), ("--host", "'never'")])
def test_fixed_choices_are_checked_while_parsing(program, option, allowed):
    """An .npub is profiled without compiling: a bad choice was ignored there, now it is refused."""
    d, _ = program
    line = one_error_line(npukit_cli("profile", d / "m.npub", option, "zz"))
    assert option in line and "'zz'" in line and allowed in line


@pytest.mark.parametrize("flag, value", [("--ray", "foo"), ("--workers", "0")])
def test_sweep_options_are_checked_before_the_models_are_prepared(tmp_path, flag, value):
    """The space's model calibrates on random data and warns: no warning means no work began."""
    space = f'[arch]\n"mxu.rows" = [8]\n[[models]]\npath = "{DIGITS}"\ninput_shapes = {{ x = [1, 1, 8, 8] }}\n'
    (tmp_path / "space.toml").write_text(space)
    line = one_error_line(npukit_cli("explore", "--space", tmp_path / "space.toml", "--db", tmp_path / "r.db",
                                     flag, value))
    assert flag in line and not (tmp_path / "r.db").exists()


def test_output_folders_are_created(program, tmp_path):
    d, _ = program
    out, js = tmp_path / "new" / "deeper" / "m.npub", tmp_path / "other" / "sqnr.json"
    r = npukit_cli("compile", DIGITS, *SHAPE, "--calib", d / "calib.npz", "-o", out, "--json", js)
    assert r.returncode == 0, r.stderr
    assert npukit.load(out).profile().total_cycles > 0 and json.loads(js.read_text())["sqnr"]
    prof, csv = tmp_path / "p" / "profile.json", tmp_path / "c" / "layers.csv"
    r = npukit_cli("profile", d / "m.npub", "--json", prof, "--csv", csv)
    assert r.returncode == 0, r.stderr
    assert len(json.loads(prof.read_text())["layers"]) == len(csv.read_text().splitlines()) - 1


def test_output_under_a_file_is_refused_before_any_work(tmp_path):
    """The model is garbage: had the compiler run first, the error would be about the model."""
    (tmp_path / "garbage.onnx").write_bytes(b"not a model")
    (tmp_path / "taken").write_text("a file")
    out = tmp_path / "taken" / "m.npub"
    line = one_error_line(npukit_cli("compile", tmp_path / "garbage.onnx", "-o", out))
    assert str(out) in line and "not a folder" in line and "garbage" not in line
    assert (tmp_path / "taken").read_text() == "a file"


def test_misspelt_arch_key_is_named_with_the_close_match(tmp_path):
    text = load_arch("npu-s").to_toml().replace("\nrows = ", "\nrowz = ")
    (tmp_path / "typo.toml").write_text(text)
    line = one_error_line(npukit_cli("info", DIGITS, *SHAPE, "--arch", tmp_path / "typo.toml"))
    assert "'rowz'" in line or "rowz:" in line
    assert "did you mean 'rows'?" in line


@pytest.mark.parametrize("space, typo, meant", [
    ('[strategy]\nkind = "grid"\nsampels = 3\n', "'sampels'", "'samples'"),
    ('[arch]\n"mxu.rowz" = [8, 16]\n', "'mxu.rowz'", "'mxu.rows'"),
    ('[options]\ndataflw = ["ws"]\n', "dataflw", "'dataflow'"),
])
def test_misspelt_space_key_is_named_with_the_close_match(tmp_path, space, typo, meant):
    (tmp_path / "space.toml").write_text(space)
    line = one_error_line(npukit_cli("explore", "--space", tmp_path / "space.toml", "--db", tmp_path / "r.db"))
    assert typo in line and f"did you mean {meant}?" in line


@pytest.mark.parametrize("columns", [60, 200])
def test_profile_table_fits_the_terminal_and_never_splits_a_number(program, columns):
    d, _ = program
    r = npukit_cli("profile", d / "m.npub", "--json", d / "p.json", columns=columns)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert max(len(x.rstrip()) for x in lines) <= columns
    layers = json.loads((d / "p.json").read_text())["layers"]
    first = next(i for i, x in enumerate(lines) if x.startswith("│"))
    table = list(itertools.takewhile(lambda x: x.startswith("│"), lines[first:]))   # the layer table's body
    assert len(table) == len(layers)
    for row, la in zip(table, layers):      # each layer's numbers whole, on its own row
        cells = [c.strip() for c in row.strip("│").split("│")]
        assert f"{la['cycles']:,}" in cells and f"{la['macs']:,}" in cells, (row, la)
    if columns == 200:                      # wide enough: every column
        assert all(h in r.stdout for h in ("roofline", "dram B", "mxu", "bound", "eff"))


def test_small_network_reads_in_cycles_and_microseconds(program):
    d, compiled = program
    p = npukit.load(d / "m.npub").profile()
    us = p.total_cycles / p.clock_mhz         # cycles at MHz: microseconds
    assert 1 <= us < 1000, "the digits network should take microseconds"
    want = f"{p.total_cycles:,} cycles ({us:.3g} us)"
    run = npukit_cli("run", d / "m.npub", "--input", d / "x.npy", "-o", d / "o.npz")
    prof = npukit_cli("profile", d / "m.npub")
    for r in (compiled, run, prof):
        assert r.returncode == 0, r.stderr
        assert want in r.stdout and "0.001 ms" not in r.stdout, r.stdout


def test_run_prints_cycles_latency_and_energy_per_inference(program):
    d, _ = program
    p = npukit.load(d / "m.npub").profile()
    r = npukit_cli("run", d / "m.npub", "--input", d / "x.npy", "-o", d / "o.npz")
    assert r.returncode == 0, r.stderr
    line = next(x for x in r.stdout.splitlines() if x.startswith("per inference"))
    assert f"{p.total_cycles:,} cycles ({p.total_cycles / p.clock_mhz:.3g} us)" in line
    value, unit = re.search(r"([\d.]+) (pJ|nJ|uJ|mJ)", line).groups()
    scale = {"pJ": 1e-6, "nJ": 1e-3, "uJ": 1.0, "mJ": 1e3}[unit]
    assert float(value) * scale == pytest.approx(p.energy_uj, rel=5e-3)


def test_warnings_are_one_clean_line(tmp_path):
    """Random calibration warns, in compile and in a sweep's model preparation alike."""
    space = f'[strategy]\nkind = "grid"\n[arch]\n"mxu.rows" = [8]\n[[models]]\npath = "{DIGITS}"\n' \
            'input_shapes = { x = [1, 1, 8, 8] }\n'
    (tmp_path / "space.toml").write_text(space)
    runs = [npukit_cli("compile", DIGITS, *SHAPE, "-o", tmp_path / "m.npub"),
            npukit_cli("explore", "--space", tmp_path / "space.toml", "--db", tmp_path / "r.db", "--workers", "1",
                       "--quiet")]
    for r in runs:
        assert r.returncode == 0, r.stderr
        lines = [x for x in r.stderr.splitlines() if x.strip()]
        assert lines == ["WARNING: no calibration data given: calibrating on RANDOM inputs; int8 accuracy will "
                         "be poor — pass --calib FILE.npz with real samples"], r.stderr
        assert ".py:" not in r.stderr and "warnings.warn" not in r.stderr


def test_compile_of_a_quantised_model_says_there_is_no_noise_report(tmp_path):
    """An int8 TFLite keeps its own scales: no float reference, so one line, not an empty table."""
    r = npukit_cli("compile", ROOT / "tests/data/mlperf_tiny/ds_cnn.tflite", "--arch", "u55-256",
                   "-o", tmp_path / "m.npub")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "no per-layer SQNR: the model arrives quantised (its scales are kept)"
    assert "SQNR dB" not in r.stdout and (tmp_path / "m.npub").stat().st_size > 0
