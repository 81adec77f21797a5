"""headstart: transfer learning on small labeled datasets, for text and images."""

from headstart.api import curve, fit, layers, load, predict, prepare, rank
from headstart.errors import BackboneError, DataError, HeadstartError, ModelError
from headstart.learn.finetune import FinetuneConfig
from headstart.model import Model

__version__ = "0.1.0"
__all__ = ["BackboneError", "curve", "DataError", "FinetuneConfig", "HeadstartError", "Model", "ModelError", "fit", "layers", "load",
           "predict", "prepare", "rank"]
