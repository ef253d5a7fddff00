# Two entry points for a fresh machine with only Python: `make demo` and `make test`.
# Each creates .venv and installs what it needs once; a stamp file per extra set
# keeps reruns fast (reinstalls only when pyproject.toml changes).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DIR := demo

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-base: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,gui,dask]"
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base $(DEMO_DIR)/sim.ome.tif
	$(BIN)/fovflow inspect $(DEMO_DIR)/sim.ome.tif
	$(BIN)/fovflow run $(DEMO_DIR)/sim.ome.tif -o $(DEMO_DIR)/out --pc 0 --fl 1 --no-report
	$(BIN)/fovflow merge $(DEMO_DIR)/out --samples examples/demo_samples.yaml
	$(BIN)/fovflow fit $(DEMO_DIR)/out/samples/ctrl_intensity_total_ch_1.csv --model maturation --report
	$(BIN)/fovflow fit $(DEMO_DIR)/out/samples/treated_intensity_total_ch_1.csv --model maturation --report
	$(BIN)/fovflow report $(DEMO_DIR)/out  # the QC page, with the fits

$(DEMO_DIR)/sim.ome.tif: | $(VENV)/.installed-base
	$(BIN)/fovflow simulate $@ --n-fovs 4 --frames 40 --size 512 --seed 0 --force

test: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_read.py

clean:
	rm -rf $(VENV) $(DEMO_DIR)
