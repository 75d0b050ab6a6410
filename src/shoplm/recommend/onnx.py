"""ONNX Runtime sessions for serving one request at a time.

Models trained with PyTorch or LightGBM are exported once, when they are fitted, to an ONNX
graph kept with the model; a serving process runs the graph with ONNX Runtime and imports
neither training library.

Example:
    >>> session = serving_session(model_bytes)     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any


def serving_session(model: bytes) -> Any:
    """An ONNX Runtime session on one thread: one request's work is far too little to split.

    Args:
        model: the serialized ONNX model.

    Returns:
        An ``onnxruntime.InferenceSession`` on the CPU.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
