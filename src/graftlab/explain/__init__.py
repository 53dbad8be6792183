"""Why the model said what it said: token attributions for one input, the report's examples, and the
words most associated with each class.

* :func:`explain` — one text: layer integrated gradients (neural text models) or occlusion (any text model);
* :func:`report_examples` — per class, the most confident correct and wrong test examples, explained;
* :func:`class_tokens` — per class, the words most associated with the model's predictions.

Only text models can be explained for now; image saliency is to come as a sibling of :mod:`.text`.
Heavy libraries (torch, captum) are imported when an explanation runs, not when this package is imported.
"""

from .api import METHODS, explain, report_examples
from .tokens import class_tokens

__all__ = ["METHODS", "class_tokens", "explain", "report_examples"]
