"""A frame a camera source delivers: the type every source (OpenCV capture, image files,
MJPEG over HTTP) hands to the camera's decoder. A leaf module, so that a source need not
import the camera driver that imports it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np


@dataclass
class Frame:
    image: np.ndarray
    index: int            # frames the source has delivered before this one
    t: float              # the source's clock in seconds (media time, or monotonic when live)
    grabbed_at: float     # time.monotonic() when the frame arrived
    at: datetime          # the same instant in UTC
