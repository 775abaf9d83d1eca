"""Backends the CPU benchmarks set beside torch eager (bench_precision.py, bench_cpu.py)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import torch


def onnx_runtime_call(
    net: torch.nn.Module, sample: torch.Tensor, *, dynamic: bool = False
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`net` exported with torch.onnx.export (the TorchScript exporter) for inputs shaped like
    `sample` (any batch and size with `dynamic`), run by ONNX Runtime's CPU provider with
    torch's thread count: a function of a float tensor to its first output."""
    import onnxruntime as ort

    path = Path(tempfile.mkdtemp()) / "net.onnx"
    axes = {0: "n", 2: "h", 3: "w"}
    torch.onnx.export(
        net,
        (sample,),
        str(path),
        dynamo=False,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": axes, "output": axes} if dynamic else None,
    )
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(None, {"input": x.numpy()})[0])
