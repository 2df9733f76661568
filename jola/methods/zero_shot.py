"""Zero-shot: evaluate the base model as it is."""

from jola.config import ZeroShotConfig
from jola.methods.base import Method
from jola.methods.registry import METHODS


@METHODS.register("zero_shot")
class ZeroShot(Method):
    """No preparation, no training, no artifact."""

    name = "zero_shot"
    config_class = ZeroShotConfig
