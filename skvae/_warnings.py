"""Warnings attributed to the caller's line, not to a frame inside a library."""

import os
import sys
import warnings

import joblib
import sklearn
import torch

#: Frames in these packages are skipped: skvae's own, and the wrappers a call to
#: ``fit`` passes through (scikit-learn's ``_fit_context`` and search loops,
#: joblib's workers, torch's ``inference_mode`` and ``enable_grad`` decorators).
_LIBRARIES = tuple(
    os.path.dirname(path) + os.sep
    for path in (__file__, sklearn.__file__, joblib.__file__, torch.__file__)
)


def warn(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` pointing at the first frame outside those libraries.

    A user's filter by module, and the location Python prints, then name the
    user's line that called ``fit`` (or ``GridSearchCV.fit``), however many
    decorators lie between.
    """
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARIES):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def emit(notes: list[tuple[type[Warning], str]]) -> None:
    """Warn of each ``(category, message)`` in ``notes``, in order (see ``warn``).

    A fit gathers its warnings as such pairs and emits them at its end, so that one
    made of several trainings can tell them apart and warn once of each thing.
    """
    for category, message in notes:
        warn(message, category)
