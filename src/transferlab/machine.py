"""The machine numbers come from: the CPU's model, the instruction-set extensions that set its speed, its cores
and its load. Every record carries it, so that a figure always says where it was measured."""
from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

# /proc/cpuinfo flags that decide fp32/bf16/int8 matmul and convolution speed
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni", "avx512_bf16",
             "avx512_fp16", "avx_vnni", "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")  # int8 dot products without the u8×s8 overflow of AVX2


def _cpuinfo() -> dict[str, str]:
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def onednn_bf16() -> bool:
    """Whether oneDNN has bf16 kernels on this CPU (AVX-512 BW/VL/DQ or AVX-NE-CONVERT); without them PyTorch's
    bf16 falls back to far slower reference kernels."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def cpu_info() -> dict:
    """The CPU's model and the instruction-set extensions that set its matmul speed (Linux ``/proc/cpuinfo``),
    and the kernels PyTorch picked for it."""
    fields = _cpuinfo()
    model = fields.get("model name") or platform.processor() or platform.machine()
    if "cpu family" in fields:
        model += f" ({fields.get('vendor_id', '')} family {fields['cpu family']} model {fields.get('model', '?')})"
    flags = set(fields.get("flags", "").split())
    return {"model": model, "isa": [f for f in ISA_FLAGS if f in flags],
            "torch_capability": torch.backends.cpu.get_cpu_capability(), "onednn_bf16": onednn_bf16()}


def has_vnni() -> bool:
    """Whether the CPU has int8 dot-product instructions (VNNI or AMX-INT8)."""
    return any(f in cpu_info()["isa"] for f in VNNI_FLAGS)


def machine() -> dict:
    """What a record says of the machine: CPU model, ISA extensions, cores, torch threads and the load average
    when the record was made."""
    cpu = cpu_info()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu["model"], "isa": cpu["isa"], "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "load_average": [round(v, 2) for v in load] if load else None}
