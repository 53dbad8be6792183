"""Why the model said what it said: attributions for one input, the report's examples, and the words most
associated with each class.

* :func:`explain` — one input. A text: layer integrated gradients (neural text models) or occlusion of
  one word at a time (any text model), :mod:`.text`. An image: integrated gradients over the pixels
  (neural image models) or occlusion of one patch of a grid at a time (any image model), :mod:`.image`;
* :func:`report_examples` — per class, the most confident correct and wrong test examples (texts or images), explained;
* :func:`class_tokens` — per class, the words most associated with the model's predictions.

Heavy libraries (torch, captum, matplotlib) are imported when an explanation runs, not when this package
is imported.
"""

from .api import METHODS, explain, report_examples
from .tokens import class_tokens

__all__ = ["METHODS", "class_tokens", "explain", "report_examples"]
