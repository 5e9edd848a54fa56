"""Runtimes for bindkit models: the opt-in CPU fast path (`cpu`), export to ONNX/OpenVINO and backends."""
