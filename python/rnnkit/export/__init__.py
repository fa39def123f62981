"""Model export: `export_onnx(model, path)` (also `model.export(path, format="onnx")`).

The `onnx` package is imported only when a model is exported (the `rnnkit[onnx]` extra).
"""

from rnnkit.export.onnx import export_onnx, to_onnx

__all__ = ["export_onnx", "to_onnx"]
