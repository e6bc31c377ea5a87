"""What reading and writing ONNX share: the opsets clnn follows, and the
onnx package."""

from .errors import ModelError

OLDEST_OPSET = 11
# The ops' schemas were compared version by version up to this opset
# (onnx.defs.get_schema and the operator changelog) and every change is
# followed or refused by name: Softmax's axis (13), Clip's bounds as inputs
# (11) and a min above max giving max (13), Reshape's allowzero (14),
# BatchNormalization's training_mode (14), Dropout's ratio and training_mode
# inputs (12), Constant's value_* attributes (12), AveragePool's dilations
# (19), pooling windows that would start in the right pad dropped with
# ceil_mode (22: clnn, like onnxruntime, does so at every opset). The other
# changes add element types (bfloat16, integers, float8, int4...), which clnn
# refuses at the graph inputs. An op whose schema changed after this opset is
# refused by name.
REVIEWED_OPSET = 28
DEFAULT_DOMAINS = ("", "ai.onnx")


def require_onnx():
    """The onnx module, or a ModelError that says how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("reading and writing ONNX needs the onnx package: pip install onnx") from exc
    return onnx
