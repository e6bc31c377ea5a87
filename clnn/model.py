"""clnn.Model: the graph a user loads, builds, runs and saves as ONNX."""

from pathlib import Path

from .graph import Graph
from .onnx_export import DEFAULT_OPSET, to_onnx


class Model(Graph):
    """A Graph (see clnn.graph) that writes itself as ONNX. Built from
    layers (``Model(inputs, layers, outputs)``), by the zoo or by
    ``clnn.load``."""

    def to_onnx(self, opset=DEFAULT_OPSET):
        """The model as an onnx.ModelProto (needs the onnx package)."""
        return to_onnx(self, opset=opset)

    def save(self, path, opset=DEFAULT_OPSET):
        """Write the model as an ONNX file."""
        Path(path).write_bytes(self.to_onnx(opset=opset).SerializeToString())
