"""headstart: transfer learning on small labeled datasets, for text and images."""


from headstart.errors import BackboneError, DataError, HeadstartError, ModelError
from headstart.lazy import lazy_attributes

__version__ = "0.1.0"

# The public names that need torch and transformers load on first use (PEP 562): a command that
# never trains, such as the labeling web server or `headstart --help`, starts in a fraction of
# the time and memory.
_LAZY = {
    "curve": "headstart.studies", "export": "headstart.api", "fit": "headstart.api", "layers": "headstart.studies", "load": "headstart.api",
    "predict": "headstart.api", "predict_table": "headstart.api", "prepare": "headstart.data.prepare", "rank": "headstart.studies", "shift": "headstart.studies",
    "zero_shot": "headstart.api",
    "FinetuneConfig": "headstart.learn.config", "Model": "headstart.model",
}
__all__ = ["BackboneError", "DataError", "HeadstartError", "ModelError", *_LAZY]
__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
