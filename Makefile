# Two commands do all the set-up on a fresh machine:
#   make run    installs (first time) and opens SegLoop on the bundled data_source/ cases
#   make test   installs (first time) and runs the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.install-stamp

.PHONY: install run test bench

$(STAMP): requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip==26.3 setuptools==84.2.1 wheel==0.48.0
	# numpy first: GeodisTK and SimpleCRF compile against it without build isolation
	$(PY) -m pip install --quiet numpy==2.4.6
	CPPFLAGS="-DNPY_IN_ARRAY=NPY_ARRAY_IN_ARRAY" $(PY) -m pip install --quiet --no-build-isolation -r requirements.txt
	$(PY) -c "import torch, PyQt5, pyqtgraph, SimpleITK, GeodisTK, maxflow, denseCRF, cv2; print('SegLoop install OK, torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'cpu')"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) main.py --data data_source

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q tests
