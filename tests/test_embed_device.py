"""Device selection: explicit errors, the auto fallback note, no torch import for 'cpu'."""

import pytest

from crawlmix.embed import device as dev
from crawlmix.embed.device import AUTO_CPU_NOTE, DeviceError, cpu_threads, resolve_device


def _fake(monkeypatch, names, why=None):
    monkeypatch.setattr(dev, "cuda_devices", lambda: (list(names), why))


def test_cpu_is_cpu_without_a_note(monkeypatch):
    monkeypatch.setattr(dev, "cuda_devices", lambda: pytest.fail("cpu must not probe CUDA"))
    assert resolve_device("cpu") == ("cpu", None)
    assert resolve_device(" CPU ") == ("cpu", None)


def test_auto_falls_back_to_cpu_with_a_note(monkeypatch):
    _fake(monkeypatch, [], "this torch build has no CUDA support")
    assert resolve_device("auto") == ("cpu", AUTO_CPU_NOTE)
    assert AUTO_CPU_NOTE == "CUDA not available; using CPU"


def test_auto_picks_the_first_gpu(monkeypatch):
    _fake(monkeypatch, ["NVIDIA H100 80GB HBM3"])
    assert resolve_device("auto") == ("cuda:0", None)
    assert resolve_device("cuda") == ("cuda:0", None)
    assert resolve_device("cuda:0") == ("cuda:0", None)


def test_missing_gpu_index_names_the_device_and_what_exists(monkeypatch):
    _fake(monkeypatch, ["NVIDIA H100 80GB HBM3"])
    with pytest.raises(DeviceError) as err:
        resolve_device("cuda:1")
    message = str(err.value)
    assert "cuda:1" in message and "cuda:0 (NVIDIA H100 80GB HBM3)" in message and "1 CUDA device" in message


def test_cuda_without_cuda_is_a_clear_error(monkeypatch):
    _fake(monkeypatch, [], "torch.cuda.is_available() is False (no driver or no visible GPU)")
    for request in ("cuda", "cuda:0", "cuda:3"):
        with pytest.raises(DeviceError) as err:
            resolve_device(request)
        message = str(err.value)
        assert request in message and "is_available() is False" in message and "Available devices: cpu" in message


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", "cuda:-1", "cpu:0", "auto:1", "", "cuda1", "mps", None, 0])
def test_bad_device_strings(bad):
    with pytest.raises(DeviceError):
        resolve_device(bad)


def test_real_machine_auto():
    names, why = dev.cuda_devices()
    device, note = resolve_device("auto")
    if names:
        assert device == "cuda:0" and note is None
    else:
        assert device == "cpu" and note == AUTO_CPU_NOTE and why


def test_cpu_threads(monkeypatch):
    monkeypatch.delenv("CRAWLMIX_EMBED_THREADS", raising=False)
    assert cpu_threads() >= 1
    monkeypatch.setenv("CRAWLMIX_EMBED_THREADS", "3")
    assert cpu_threads() == 3
    monkeypatch.setenv("CRAWLMIX_EMBED_THREADS", "zero")
    with pytest.raises(DeviceError):
        cpu_threads()
