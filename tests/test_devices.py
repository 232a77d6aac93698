import pytest
import torch

from synthgen.devices import DeviceError, resolve_device


def test_auto_follows_cuda_availability_and_cpu_is_always_there():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu") == resolve_device(torch.device("cpu"))


def test_unknown_devices_are_refused_with_the_choices():
    for bad in ("gpu", "cpu:1", "tpu"):
        with pytest.raises(DeviceError, match="choose from auto, cpu, cuda"):
            resolve_device(bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_an_error_not_a_silent_cpu_run():
    for name in ("cuda", "cuda:1"):
        with pytest.raises(DeviceError, match="no CUDA device is visible"):
            resolve_device(name)
