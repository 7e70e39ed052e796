# dptrack — two commands set everything up on a fresh clone:
#   make demo   installs into .venv, renders a small synthetic DensePose-Track set, propagates its
#               labels with the default estimator (OpenCV DIS), inspects and scores the result and
#               writes the quality report
#   make test   installs into .venv and runs the test suite (CPU only)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DEMO ?= demo_out
DEMO_VIDEOS ?= 3
DEMO_FRAMES ?= 24

.PHONY: install test demo train-demo pairs-demo lint format bench bench-reader bench-pairs bench-flownet2 experiment clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

test: install
	$(PY) -m pytest -q

demo: install
	$(VENV)/bin/dptrack-build synth $(DEMO)/synth --videos $(DEMO_VIDEOS) --frames $(DEMO_FRAMES) --seed 0
	$(VENV)/bin/dptrack-build run --annotations $(DEMO)/synth/annotations.json \
		--frames-root $(DEMO)/synth --out $(DEMO)/shards --num-shards 2 --overwrite
	$(VENV)/bin/dptrack-build inspect $(DEMO)/shards --render $(DEMO)/render
	$(VENV)/bin/dptrack-build score $(DEMO)/shards --truth $(DEMO)/synth
	$(VENV)/bin/dptrack-build report $(DEMO)/shards --out $(DEMO)/report.html
	$(VENV)/bin/dptrack-build export $(DEMO)/shards --out $(DEMO)/export/densepose_coco.json \
		--no-progress
	$(VENV)/bin/dptrack-build export $(DEMO)/shards --format densepose-posetrack --per-video \
		--out $(DEMO)/export/densepose_posetrack --overwrite --no-progress
	$(VENV)/bin/dptrack-build validate $(DEMO)/export/densepose_coco.json --frames-root $(DEMO)/synth
	@echo
	@echo "demo done:"
	@echo "  synthetic input (frames, annotations.json, truth/): $(DEMO)/synth"
	@echo "  shards (Parquet, HDF5, dataset_info.json):          $(DEMO)/shards"
	@echo "  overlays and flow pictures:                         $(DEMO)/render"
	@echo "  quality report (open in a browser):                 $(DEMO)/report.html"
	@echo "  DensePose-COCO / -PoseTrack exports (detectron2):    $(DEMO)/export"

# A short dptrack-train run on the demo shards (after make demo): GT propagation + equivariance
# with the shards' real flow, evaluated in cm on the synthetic bodies.
train-demo: install
	$(VENV)/bin/dptrack-train --shards $(DEMO)/shards --val-shards $(DEMO)/shards \
		--truth $(DEMO)/synth --out $(DEMO)/train --steps 200 --eval-every 50 --channels 32 \
		--batch-size 4 --lr 2e-3 --gt-propagation --log-every 10
	@echo "training run (config, metrics.jsonl, metrics.png, checkpoints): $(DEMO)/train"

# Flow pairs for equivariance training from the demo's frames (after make demo): no labels used.
pairs-demo: install
	$(VENV)/bin/dptrack-build pairs --videos $(DEMO)/synth/frames --out $(DEMO)/pairs \
		--crop-size 128 --overwrite
	$(VENV)/bin/dptrack-build inspect $(DEMO)/pairs --render $(DEMO)/pairs_render --max-render 6
	@echo "pairs (Parquet index, HDF5 crops/flows, dataset_info.json): $(DEMO)/pairs"

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install
	$(PY) benchmarks/bench_pipeline.py

bench-reader: install
	$(PY) benchmarks/bench_reader.py

bench-pairs: install
	$(PY) benchmarks/bench_pairs.py

# Needs a GPU and the public checkpoint: make bench-flownet2 CHECKPOINT=FlowNet2_checkpoint.pth.tar
bench-flownet2: install
	$(PY) benchmarks/bench_flownet2.py --checkpoint $(CHECKPOINT)

# Slim DensePose Table 6 (i-iv) on synthetic data: 5 configurations x 3 seeds, about 40 min on 2 cores
experiment: install
	$(PY) benchmarks/train_experiment.py --work experiment_out

clean:
	rm -rf $(DEMO) experiment_out .pytest_cache build *.egg-info
