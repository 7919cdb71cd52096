"""Test configuration: select Keras 2 before anything imports TensorFlow."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import adaptau_tf  # noqa: E402,F401

#: The shared benchmark data beside the repository (absent on some machines).
SHARED_DATA = REPO.parent / "shared" / "data"
