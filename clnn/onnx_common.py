"""What reading and writing ONNX share: the opsets clnn follows, and the
onnx package."""

from .errors import ModelError

OPSETS = range(11, 22)
DEFAULT_DOMAINS = ("", "ai.onnx")


def require_onnx():
    """The onnx module, or a ModelError that says how to install it."""
    try:
        import onnx
    except ImportError as exc:
        raise ModelError("reading and writing ONNX needs the onnx package: pip install onnx") from exc
    return onnx
