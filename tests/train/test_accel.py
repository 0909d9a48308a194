"""The GPU fast path's code paths, exercised on the CPU (no GPU here): the switches per device, mixed
precision, the train cache gathered from a device tensor, out-of-memory back-off, batch sizing from
memory, inputs that grow with the measured pixel rate."""
import copy

import numpy as np
import pytest
import torch

from autoclint.data.adapt import InputShape, side_cap
from autoclint.nets import create_model
from autoclint.train.accel import GpuCfg, accel_for, batch_for_memory, pass_pixels, pixel_rate
from autoclint.train.config import TrainCfg, with_overrides
from autoclint.train.finetune import FineTuner
from autoclint.train.runner import NetRunner, Preprocess
from tests.conftest import faces, one_hot

CPU = torch.device("cpu")


def faces_runner(cfg: TrainCfg, subjects: int = 10):
    """Real AT&T faces at 28x23 (every 4th pixel), a small CNN on them, and its fine-tuner."""
    x, labels = faces(per_subject=4, subjects=subjects)
    x = np.ascontiguousarray(x[:, ::4, ::4][:, None])  # (N, 1, 28, 23, 1)
    y = one_hot(labels, subjects)
    torch.manual_seed(0)
    net = create_model("small_cnn", subjects, 1)
    pre = Preprocess(InputShape(1, 28, 23, 1), 0.0, 1.0, (32, 32), (127.0,), (64.0,), "small_cnn", subjects, False)
    runner = NetRunner(pre, CPU, net, accel_for(CPU, cfg))
    return runner, FineTuner(runner, y, np.arange(len(x)), False, cfg, flip=True), x, y


def test_cpu_keeps_every_switch_off_and_a_gpu_gets_them():
    cpu = accel_for(CPU, TrainCfg())
    assert (cpu.amp_dtype, cpu.cache_on_device, cpu.train_batch, cpu.infer_frames) == (None, False, 64, 128)
    cfg = TrainCfg(gpu=GpuCfg(amp="bf16"))  # "auto" would ask the CUDA driver which dtype it has
    gpu = accel_for(torch.device("cuda"), cfg)
    assert (gpu.amp_dtype, gpu.cache_on_device, gpu.train_batch, gpu.infer_frames) == (
        torch.bfloat16, True, 256, 1024)
    assert accel_for(torch.device("cuda"), TrainCfg(gpu=GpuCfg(amp="fp16"))).amp_dtype is torch.float16
    assert accel_for(CPU, TrainCfg(gpu=GpuCfg(amp="bf16", cache_on_device="on"))).cache_on_device


def test_bad_gpu_settings_are_one_sentence():
    with pytest.raises(ValueError, match=r"^gpu\.amp=fp8: expected auto, bf16, fp16 or off$"):
        with_overrides(TrainCfg(), ["gpu.amp=fp8"])
    with pytest.raises(ValueError, match=r"^gpu\.cache_on_device=yes: expected auto, on or off$"):
        with_overrides(TrainCfg(), ["gpu.cache_on_device=yes"])
    assert with_overrides(TrainCfg(), ["gpu.batch_size=128"]).gpu.batch_size == 128


def test_steps_from_the_cache_as_a_device_tensor_equal_steps_from_the_host_array():
    host_runner, host, x, y = faces_runner(TrainCfg())
    dev_runner, dev, _, _ = faces_runner(TrainCfg(gpu=GpuCfg(cache_on_device="on")))
    dev_runner.net.load_state_dict(host_runner.net.state_dict())
    losses = []
    for tuner in (host, dev):
        torch.manual_seed(1)  # crops and flips draw from torch's generator
        losses.append(tuner.train_for(x, y, seconds=600, max_steps=3))
    assert host._x_device is None and dev._x_device is not None
    assert dev._x_device.data_ptr() == x.ctypes.data  # on the CPU the "device copy" is the host array itself
    assert losses[0] == losses[1] and np.isfinite(losses[0])
    for a, b in zip(host_runner.net.parameters(), dev_runner.net.parameters()):
        assert torch.equal(a, b)
    dev.examples_changed(np.array([0, 1]))  # streaming's hook: a no-op where memory is shared
    assert host.steps == dev.steps == 3


def test_bf16_autocast_trains_and_predicts_in_float32_outputs():
    runner, tuner, x, y = faces_runner(TrainCfg(gpu=GpuCfg(amp="bf16")))
    seen = []
    runner.net.backbone.register_forward_hook(lambda m, args, out: seen.append(out.dtype))
    before = copy.deepcopy(runner.net.state_dict())
    loss = tuner.train_for(x, y, seconds=600, max_steps=2)
    assert seen and set(seen) == {torch.bfloat16}  # the forward pass ran in bf16 ...
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in runner.net.parameters())  # ... the weights stay float32
    assert any(not torch.equal(before[k], v) for k, v in runner.net.state_dict().items())
    logits = runner.infer(x)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    reference = NetRunner(runner.pre, CPU, runner.net, accel_for(CPU, TrainCfg())).infer(x)
    # bf16 keeps ~3 significant digits: same ranking of classes nearly everywhere, close values
    assert np.mean(logits.argmax(1) == reference.argmax(1)) > 0.9
    assert np.abs(logits - reference).max() < 0.05 * np.abs(reference).max() + 0.05


def refuse_batches_over(module: torch.nn.Module, limit: int) -> list[int]:
    """Makes `module` raise CUDA's out-of-memory error on batches larger than `limit`; records sizes."""
    sizes = []

    def hook(m, args):
        sizes.append(args[0].shape[0])
        if args[0].shape[0] > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
    module.register_forward_pre_hook(hook)
    return sizes


def test_out_of_memory_in_training_halves_the_batch_and_goes_on(caplog):
    runner, tuner, x, y = faces_runner(TrainCfg(batch_size=32))
    assert tuner.batch == 32
    sizes = refuse_batches_over(runner.net.backbone, 10)
    loss = tuner.train_for(x, y, seconds=600, max_steps=3)
    assert np.isfinite(loss) and tuner.steps == 3
    assert tuner.batch == 8 and sizes[:3] == [32, 16, 8]  # halved twice, then every step at 8
    assert "out of device memory in a training step: batch 8 from now on" in caplog.text
    assert tuner.batch_lr_scale == 1.0  # smaller batches never raise the lr


def test_out_of_memory_in_inference_halves_the_batch_with_the_same_outputs():
    runner, _, x, _ = faces_runner(TrainCfg())
    expected = runner.infer(x)
    assert runner.infer_batch == 128
    sizes = refuse_batches_over(runner.net.backbone, 12)
    got = runner.infer(x)
    assert runner.infer_batch == 8 and max(sizes[-5:]) <= 12
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(torch.OutOfMemoryError):  # at a batch of one there is nothing left to halve
        refuse_batches_over(runner.net.backbone, 0)
        runner.infer(x[:3])


def test_larger_gpu_batches_scale_the_lr_linearly_up_to_the_cap():
    tuner = faces_runner(TrainCfg(batch_size=8, gpu=GpuCfg(max_lr_scale=4.0)))[1]
    assert tuner.cpu_batch == 8 and tuner.batch_lr_scale == 1.0
    tuner.batch = 16
    assert tuner.batch_lr_scale == 2.0
    tuner.batch = 40
    assert tuner.batch_lr_scale == 4.0


def test_batch_from_memory():
    assert batch_for_memory(256, per_example_bytes=2**20, free=None, share=0.6) == 256  # CPU: the target
    assert batch_for_memory(256, per_example_bytes=2**20, free=100 * 2**20, share=0.6) == 60
    assert batch_for_memory(256, per_example_bytes=2**20, free=2**40, share=0.6) == 256
    assert batch_for_memory(256, per_example_bytes=2**30, free=2**30, share=0.6) == 8  # the floor
    assert batch_for_memory(4, per_example_bytes=2**30, free=2**30, share=0.6) == 4


def test_inputs_grow_with_the_measured_pixel_rate():
    net = create_model("small_cnn", 2, 3)
    rate = pixel_rate(net, accel_for(CPU, TrainCfg()), side=32, batch=4, repeats=1)
    assert rate > 0
    cfg = TrainCfg()
    assert pass_pixels(cfg, None) == cfg.pass_pixels  # no warm-up (the CPU): the 2-core figure
    assert pass_pixels(cfg, 1e3) == cfg.pass_pixels  # never below it
    median = InputShape(1, 480, 640, 3)  # 1000 camera photos
    assert side_cap(median, 1000, 1, cfg.max_side, cfg.largest_side, pass_pixels(cfg, None)) == 96
    fast = pass_pixels(cfg, 2e8)  # a GPU's rate: one pass of 1000 photos at 224 px takes 0.25 s
    assert side_cap(median, 1000, 1, cfg.max_side, cfg.gpu.largest_side, fast) == 224


def test_warm_up_measures_the_backbone_and_an_unknown_one_is_a_warning(caplog):
    from autoclint.train.accel import warm_up
    caplog.set_level("INFO", logger="autoclint")
    assert warm_up("small_cnn", accel_for(CPU, TrainCfg())) > 0
    assert "warm-up on cpu: small_cnn at" in caplog.text
    assert warm_up("no_such_net", accel_for(CPU, TrainCfg())) is None
    assert "warm-up skipped: no_such_net cannot be built" in caplog.text


def test_the_learner_runs_every_stage_with_the_gpu_paths_forced_on_the_cpu():
    from autoclint.train.session import Session
    from tests.conftest import shared
    from tests.train.test_session import datasets, run
    train, test = datasets(shared("suite", "Faces"))
    cfg = TrainCfg(first_slice_s=1.0, max_slice_s=2.0, patience=1,
                   gpu=GpuCfg(amp="bf16", cache_on_device="on"))
    session = Session(40, cfg, train_size=280)
    assert session.pixel_rate is None  # no warm-up off a GPU: the clock's costs are the CPU's
    prediction = run(session, train, test, 12, budget=900.0)
    assert session.tuner is not None and session.tuner.steps > 0, (session.stage, session.stop_reason)
    assert session.tuner._x_device is not None
    assert prediction.shape == (len(session.test_cache), 40) and np.isfinite(prediction).all()
