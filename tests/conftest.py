"""Shared test set-up. Qt is not imported here: tests/core and tests/models run without a display
(and without PyQt5 installed); GUI fixtures live in tests/gui/conftest.py."""
from __future__ import annotations

import os

# Before any test module imports Qt: GUI tests draw into an offscreen buffer, on CI and locally.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
