"""One thread setting sizes every CPU pool of the process (issue 15: oversubscription on a busy host)."""

import cv2
import pytest
import threadpoolctl
import torch

import fhsdk
from fhsdk import threads
from fhsdk.cli import build_parser
from fhsdk.errors import ConfigError
from fhsdk.runtime import ModelIO, TensorSpec, create_backend


@pytest.fixture(autouse=True)
def restore_threads(monkeypatch, tmp_path):
    monkeypatch.setenv("FHSDK_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(threads.ENV, raising=False)
    before = (torch.get_num_threads(), cv2.getNumThreads(), threads._current)
    yield
    torch.set_num_threads(before[0])
    cv2.setNumThreads(before[1])
    threads._current = before[2]


def test_apply_sizes_torch_cv2_and_the_kernels(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.default_threads() == 3
    assert threads.apply(2) == 2 and threads.current() == 2
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2
    threads.apply(1)
    blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas == [1] * len(blas) and blas  # NumPy's BLAS pool too (it sizes itself to every core otherwise)
    threads.apply(2)
    from fhsdk import _C

    assert _C.default_num_threads() == 2  # the C++ kernels read the same variable
    assert threads.apply(None) == 2  # the variable now holds the applied value
    monkeypatch.delenv(threads.ENV)
    assert threads.apply() == threads.DEFAULT_THREADS


def test_onnxruntime_sessions_take_the_setting_with_spinning_off():
    net = torch.nn.Conv2d(3, 4, 3)
    io = ModelIO(
        inputs=(TensorSpec("image", "float32", (-1, 3, 8, 8)),),
        outputs=(TensorSpec("features", "float32", (-1, 4, 6, 6)),),
        example_shapes={"image": (1, 3, 8, 8)},
    )
    threads.apply(2)
    options = create_backend("onnxruntime", net, io=io).session.get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    explicit = create_backend("onnxruntime", net, io=io, intra_op_threads=1).session.get_session_options()
    assert explicit.intra_op_num_threads == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", 10**6])
def test_bad_settings_are_refused(bad, monkeypatch):
    with pytest.raises(ConfigError, match="threads"):
        threads.apply(bad)
    with pytest.raises(ConfigError, match="threads"):
        fhsdk.Pipeline(threads=bad)
    if bad == "2":
        return  # valid as the environment variable's text
    monkeypatch.setenv(threads.ENV, str(bad))
    with pytest.raises(ConfigError, match=threads.ENV):
        threads.default_threads()


def test_cli_takes_threads():
    for command in ("run", "enroll"):
        args = build_parser().parse_args([command, "x", "--gallery", "g.npz", "--threads", "3"])
        assert args.threads == 3
