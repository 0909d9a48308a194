"""What the learner does differently on a GPU: mixed precision, cuDNN autotuning, the train cache in GPU
memory, batches sized from free memory with back-off on out-of-memory, inputs that grow with the
measured throughput, and a warm-up before the clock.

On the CPU every switch is off by default and the learner runs exactly as measured on 2 cores; each
switch can be forced there (`--set gpu.amp=bf16`, `gpu.cache_on_device=on`) so the tests exercise the
same code paths without a GPU.
"""
from __future__ import annotations

import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass

import torch

log = logging.getLogger("autoclint")


@dataclass(frozen=True)
class GpuCfg:
    amp: str = "auto"  # autocast dtype: "auto" is bf16 where the GPU has it (A100, H100), fp16 with loss
    #   scaling on older cards (V100, P100, the challenge's), off on the CPU (every figure on 2 cores was
    #   measured in float32); "bf16", "fp16" or "off" force it
    cache_on_device: str = "auto"  # the uint8 train cache in device memory, batches gathered there instead
    #   of crossing PCIe every step: "auto" on CUDA when it fits in `cache_share` of the free memory
    cache_share: float = 0.4  # of the free GPU memory the cache may take (the net, its gradients and
    #   activations, and the test passes need the rest)
    batch_size: int = 256  # images per step on a GPU (64 keeps an H100 mostly idle; video: frames scaled
    #   alike); the lr is scaled linearly with the batch from TrainCfg.batch_size's (Goyal et al. 2017,
    #   with the warm-up already there) ...
    max_lr_scale: float = 4.0  # ... by at most this much (unmeasured on a GPU so far: the device bench's job)
    memory_share: float = 0.6  # a step's measured activation memory x the batch stays within this share of
    #   the free memory (what is left absorbs fragmentation and the inference batches)
    infer_frames: int = 1024  # frames per inference batch on a GPU (the CPU's 128 is set by its caches)
    largest_side: int = 224  # the input side may grow to this on a GPU (ImageNet's size; the CPU's 128 ...
    pass_s: float = 5.0  # ... as long as one pass over the train set takes about this long at the pixel
    #   rate measured at warm-up: the rule the CPU's pass_pixels (1e7 px, ~5 s on 2 cores) states in pixels
    cudnn_benchmark: bool = True  # shapes are fixed (constant train batch, padded inference batches)
    warm_up: bool = True  # CUDA context, cuDNN plans and the pixel rate before the clock starts (Model()
    #   is built before the ingestion's clock)

    def __post_init__(self) -> None:
        if self.amp not in ("auto", "bf16", "fp16", "off"):
            raise ValueError(f"amp={self.amp}: expected auto, bf16, fp16 or off")
        if self.cache_on_device not in ("auto", "on", "off"):
            raise ValueError(f"cache_on_device={self.cache_on_device}: expected auto, on or off")


@dataclass(frozen=True)
class Accel:
    """The switches in force for one device."""
    device: torch.device
    amp_dtype: torch.dtype | None  # None: float32
    cache_on_device: bool  # may the train cache move to the device (subject to its size)
    train_batch: int  # target images per step
    infer_frames: int

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"


def amp_dtype(name: str, device: torch.device) -> torch.dtype | None:
    if name == "off" or (name == "auto" and device.type != "cuda"):
        return None
    if name == "bf16" or (name == "auto" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return torch.float16


def accel_for(device: torch.device, cfg) -> Accel:
    """The switches for `device` from a TrainCfg: on the CPU, TrainCfg's own batch sizes and none of the
    GPU's, unless forced."""
    gpu: GpuCfg = cfg.gpu
    cuda = device.type == "cuda"
    batch = gpu.batch_size if cuda else cfg.batch_size
    return Accel(device, amp_dtype(gpu.amp, device),
                 gpu.cache_on_device == "on" or (gpu.cache_on_device == "auto" and cuda),
                 batch, gpu.infer_frames if cuda else cfg.infer_frames)


def autocast(accel: Accel):
    """Mixed precision for forward passes (losses are computed in float32 by autocast's own rules)."""
    if accel.amp_dtype is None:
        return nullcontext()
    return torch.autocast(device_type=accel.device.type, dtype=accel.amp_dtype)


def grad_scaler(accel: Accel) -> torch.amp.GradScaler:
    """Loss scaling for fp16 (its 5-bit exponent flushes small gradients to zero); a no-op otherwise."""
    return torch.amp.GradScaler(accel.device.type, enabled=accel.amp_dtype is torch.float16)


def release_memory(device: torch.device) -> None:
    """After an out-of-memory error: give the cached blocks back so a smaller batch can fit."""
    if device.type == "cuda":
        torch.cuda.empty_cache()


def free_bytes(device: torch.device) -> int | None:
    """Free device memory (None on the CPU: host memory is governed by TrainCfg's caps)."""
    if device.type != "cuda":
        return None
    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def batch_for_memory(target: int, per_example_bytes: float, free: int | None, share: float, floor: int = 8) -> int:
    """The target batch, or the largest one whose activations fit in `share` of `free` (at least `floor`,
    or the target when smaller): the first OOM is then the exception, not the way the size is found."""
    if free is None or per_example_bytes <= 0:
        return target
    fits = int(share * free // per_example_bytes)
    return max(min(target, floor), min(target, fits))


def cache_fits(nbytes: int, accel: Accel, share: float) -> bool:
    """Can a uint8 cache of `nbytes` live in device memory (CPU, forced: always, it is the host array)."""
    if not accel.cache_on_device:
        return False
    free = free_bytes(accel.device)
    return free is None or nbytes <= share * free


def configure(accel: Accel, cfg) -> None:
    """Process-wide switches (cuDNN autotuning) for the device."""
    if accel.cuda:
        torch.backends.cudnn.benchmark = cfg.gpu.cudnn_benchmark


def pixel_rate(net: torch.nn.Module, accel: Accel, side: int = 128, batch: int = 64, repeats: int = 3) -> float:
    """Pixels per second the backbone's inference pass takes in at `side` x `side` (the first pass, which
    creates the CUDA context and cuDNN plans, is not counted): what one pass over the train set costs."""
    x = torch.zeros(batch, 3, side, side, device=accel.device).contiguous(memory_format=torch.channels_last)
    net = net.to(accel.device).to(memory_format=torch.channels_last).eval()
    with torch.no_grad(), autocast(accel):
        net.forward_features(x)
        if accel.cuda:
            torch.cuda.synchronize(accel.device)
        started = time.perf_counter()
        for _ in range(repeats):
            net.forward_features(x)
        if accel.cuda:
            torch.cuda.synchronize(accel.device)
    return repeats * batch * side * side / max(time.perf_counter() - started, 1e-9)


def warm_up(backbone: str, accel: Accel) -> float | None:
    """Before the clock: build the backbone once on the device (weights read, CUDA context, cuDNN plans)
    and measure its pixel rate. Returns pixels per second, None when the backbone cannot be built."""
    from autoclint.nets import create_model  # the nets import timm: only when warming up
    started = time.monotonic()
    try:
        net = create_model(backbone, 2, 3)
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        log.warning("warm-up skipped: %s cannot be built (%s)", backbone, e)
        return None
    rate = pixel_rate(net, accel)
    del net
    release_memory(accel.device)
    log.info("warm-up on %s: %s at %.3g pixels/s (%.1f s, before the clock)", accel.device, backbone, rate,
             time.monotonic() - started)
    return rate


def pass_pixels(cfg, rate: float | None) -> float:
    """Pixels one pass over the train set may take: measured rate x gpu.pass_s where warm-up measured
    one, else TrainCfg.pass_pixels (the 2-core figure)."""
    return cfg.pass_pixels if rate is None else max(cfg.pass_pixels, rate * cfg.gpu.pass_s)
