# Two entry points a fresh machine needs: `make demo` (the main job on the built-in
# default) and `make test`. Both create .venv and install into it first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch is pinned here, not in pyproject (which keeps ranges users can live with).
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[test]' $(TORCH)
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/synthgen sample --n 1000 --domains rgb,seg,sketch,landmark --out out/demo
	$(VENV)/bin/synthgen verify out/demo
	$(VENV)/bin/synthgen preview out/demo --n 16 --out out/demo/preview.png

test: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m pytest -q

clean:
	rm -rf out build *.egg-info
