"""The Ray executor on a real local cluster (2 CPUs): the same stored points as the local
pool, and a task whose worker is killed mid-task is retried."""
from __future__ import annotations

import json

import pytest

from dse_util import stored, write_space
from npukit.dse import PoolExecutor, RayExecutor, explore, load_space

import ray  # noqa: E402  (in the test extra: a missing Ray must fail, not skip)

SPACE = """
[strategy]
kind = "random"
seed = 7
samples = 12
[arch]
"mxu.rows" = [4, 8, 16, 32]
"mxu.cols" = [4, 8, 16, 32]
"regions.dram.bandwidth_gbps" = { min = 1.0, max = 32.0, log = true }
"regions.dram.size_mib" = [0.0001, 64]
[options]
double_buffer = [true, false]
[check]
inputs = 1
"""


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_stores_what_the_local_pool_stores(cluster, tmp_path, ds_cnn_path):
    space = load_space(write_space(tmp_path, SPACE, ds_cnn_path))
    on_ray = explore(space, tmp_path / "ray.sqlite", RayExecutor(), progress=False)
    explore(space, tmp_path / "pool.sqlite", PoolExecutor(2), progress=False)
    rows = stored(tmp_path / "ray.sqlite")
    assert on_ray.computed == len(rows) == 24 and on_ray.lost == 0
    assert {r["status"] for r in rows.values()} == {"ok", "error"}   # failing points stored too
    assert rows == stored(tmp_path / "pool.sqlite")


def test_a_worker_killed_mid_task_is_retried(cluster, tmp_path, ds_cnn_path):
    from npukit.dse.point import evaluate
    marks = tmp_path / "attempts"
    marks.mkdir()

    def dies_once(task, graph):   # runs inside a Ray worker: the first task to start dies, once
        import os
        import signal
        attempt = len(list(marks.glob(f"{task.key}-*")))
        (marks / f"{task.key}-{attempt}").touch()
        if attempt == 0:
            try:
                fd = os.open(marks / "victim", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, task.key.encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return evaluate(task, graph)

    space = load_space(write_space(tmp_path, SPACE, ds_cnn_path))
    summary = explore(space, tmp_path / "retry.sqlite", RayExecutor(max_retries=2), progress=False,
                      evaluate_fn=dies_once)
    rows = stored(tmp_path / "retry.sqlite")
    killed = (marks / "victim").read_text()
    assert killed in rows and summary.lost == 0 and summary.computed == len(rows) == 24
    assert len(list(marks.glob(f"{killed}-*"))) == 2      # killed once, run again, stored
    explore(space, tmp_path / "plain.sqlite", PoolExecutor(2), progress=False)
    assert rows == stored(tmp_path / "plain.sqlite")


SWEEP_200 = """
[strategy]
kind = "random"
seed = 1
samples = 100
[arch]
"mxu.rows" = [4, 8, 16, 32, 64]
"mxu.cols" = [4, 8, 16, 32, 64]
"mxu.dataflow" = ["auto", "ws", "os"]
"vpu.lanes" = [4, 8, 16, 32]
"sram.abuf_kib" = [64, 256, 1024]
"sram.acc_kib" = [16, 64]
"regions.dram.bandwidth_gbps" = { min = 1.0, max = 64.0, log = true }
"clock_mhz" = { min = 200, max = 1200, step = 100 }
[options]
double_buffer = [true, false]
"""


@pytest.mark.slow
def test_200_points_two_models_on_two_workers_and_on_ray(cluster, tmp_path):
    from npukit.models import zoo
    models = [zoo.save(zoo.resnet8(), tmp_path / "resnet8.onnx"), zoo.save(zoo.ds_cnn(), tmp_path / "ds_cnn.onnx")]
    space = tmp_path / "space.toml"
    space.write_text(SWEEP_200)
    sweep = load_space(space).with_models(models)
    pool = explore(sweep, tmp_path / "pool.sqlite", PoolExecutor(2), progress=False)
    on_ray = explore(sweep, tmp_path / "ray.sqlite", RayExecutor(), progress=False)
    print(f"\n200 points: pool(2) {pool.seconds:.1f} s = {pool.points_per_second:.1f} points/s; "
          f"ray(2 CPUs) {on_ray.seconds:.1f} s = {on_ray.points_per_second:.1f} points/s")
    rows = stored(tmp_path / "pool.sqlite")
    assert pool.computed == on_ray.computed == len(rows) == 200
    assert rows == stored(tmp_path / "ray.sqlite")


def test_ray_stores_raising_and_hanging_points_failed(cluster, tmp_path):
    from test_robust import SPACE, _by_rows, _space
    from npukit.dse import PointLimits
    from npukit.dse.point import evaluate

    def misbehaving(task, graph):   # a closure: Ray ships it by value (no test module on its path)
        import time
        rows = json.loads(task.arch_json)["mxu"]["rows"]
        if rows == 8:
            time.sleep(600)
        return 1 // 0 if rows == 4 else evaluate(task, graph)
    space = load_space(_space(tmp_path, SPACE.replace("[4, 8, 16, 32, 64]", "[4, 8, 32]")))
    s = explore(space, tmp_path / "r.sqlite", RayExecutor(limits=PointLimits(seconds=3)), progress=False,
                evaluate_fn=misbehaving)
    assert (s.computed, s.failed, s.lost) == (6, 4, 0)
    rows = _by_rows(tmp_path / "r.sqlite")
    assert rows[4] == {("error", "ZeroDivisionError: integer division or modulo by zero")}
    assert rows[8] == {("error", "timed out after 3 s")}
    assert rows[32] == {("ok", "")}
