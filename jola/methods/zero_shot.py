"""Zero-shot: evaluate the base model as it is."""

from dataclasses import dataclass

from jola.config import MethodConfig
from jola.methods.base import Method
from jola.methods.registry import register_method


@dataclass
class ZeroShotConfig(MethodConfig):
    """Zero-shot: the base model as it is, no training."""

    name: str = "zero_shot"


class ZeroShot(Method):
    """No preparation, no training, no artifact."""


register_method("zero_shot", ZeroShotConfig, ZeroShot)
