"""Whether this CPU's fast int8 products are exact, and ONNX Runtime's setting for where they are not.

On x86 CPUs without VNNI (AVX512-VNNI or AVX-VNNI), ONNX Runtime multiplies uint8 activations by int8
weights with ``vpmaddubsw``, which adds the products in pairs in 16 bits: full-range weights can
overflow it (an image export was off by 0.75 in probability on such a CPU). Its session setting
``session.x64quantprecision`` then converts int8 weights to uint8 and uses an exact, slower kernel.
ONNX Runtime applies that conversion on VNNI CPUs too, where it only costs speed, so headstart asks for
it only where the CPU needs it.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path

EXACT_INT8 = ("session.x64quantprecision", "1")
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
X86 = ("x86_64", "amd64", "i386", "i686", "x86")
CPUINFO = Path("/proc/cpuinfo")


@functools.cache  # the CPU does not change while headstart runs; /proc/cpuinfo is read once a field
def cpuinfo_field(name: str) -> str | None:
    """The first CPU's ``name`` in /proc/cpuinfo ("flags", "model name"), or None where it cannot be read (not Linux)."""
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), None)


def int8_flags() -> list[str] | None:
    """The CPU flags that decide ONNX Runtime's int8 kernels, or None where they cannot be read (not Linux)."""
    line = cpuinfo_field("flags")
    return None if line is None else [flag for flag in line.split() if flag in INT8_FLAGS]


def needs_exact_int8() -> bool:
    """Whether this CPU can overflow ONNX Runtime's fast int8 products: x86 without VNNI, or x86 unread."""
    if platform.machine().lower() not in X86:
        return False  # ARM multiplies 8-bit numbers into 32 bits
    flags = int8_flags()
    return flags is None or not {"avx512_vnni", "avx_vnni"} & set(flags)
