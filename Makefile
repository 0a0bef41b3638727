# The two set-up commands of the README:
#   make book   - builds the whole book into _build/html (the "book" profile)
#   make test   - runs the whole test suite (it builds the book in the fast "smoke" profile too)
# For classrooms: make student writes the chapters without their solutions into _build/student.
# Both create .venv if it is missing and install what they need; a second run skips the install
# when pyproject.toml and this Makefile are unchanged.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stamp-install
# Exact pins live here only (the development and CI install path); the package itself declares
# lower bounds so that Colab keeps its own torch.
TORCH_PINS := torch==2.14.1 torchaudio==2.11.0
# Data, runs and caches of the book build stay inside the ignored build folder.
export ASDLIB_HOME ?= $(CURDIR)/_build/asdlib
# OpenMP threads that spin while waiting make torch many times slower when the cores are shared
# (tests start several processes); passive waiting costs nothing measurable otherwise.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: install book test student runs runs-gpu curve curve-gpu clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(TORCH_PINS)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[book,dev]"
	@touch $(STAMP)

# Progress bars help whoever runs a chapter, not the static pages: the build turns them off.
book: $(STAMP)
	ASDLIB_PROFILE=$${ASDLIB_PROFILE:-book} TQDM_DISABLE=1 $(VENV)/bin/jupyter-book build . -W --keep-going
	@echo "The book is at $(CURDIR)/_build/html/index.html"

# The student edition: solution cells removed, exercise stubs and checkers kept.
STUDENT_DIR ?= _build/student
student: $(STAMP)
	$(PY) -m asdlib student --book book --out $(STUDENT_DIR)

# The runs of chapters 7-11 (the book profile reads the evidence profile's, at the learning
# curve's scale): trained once (two processes, one thread each; resumable: run it again after a
# stop) and published into asdlib/published/ with a manifest, each run as soon as it is done.
# Hours on a 2-core CPU; minutes on a GPU machine (make runs-gpu).
# COMMIT=1 also git-commits asdlib/published after each published run.
RUNS_JOBS ?= 2
PROFILE ?= book
COMMIT ?=
RUNS_COMMIT := $(if $(COMMIT),--commit)
runs: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m asdlib runs --profile $(PROFILE) --jobs $(RUNS_JOBS) $(RUNS_COMMIT)

# The same runs on a machine with a CUDA GPU: the data generated with every core, the clips held
# on the GPU, several runs at a time there; published exactly as make runs does.
runs-gpu: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m asdlib runs --profile $(PROFILE) --gpu $(RUNS_COMMIT)

# The learning curve of chapter 2 (the two reference models against the training sound per
# machine): each point published into asdlib/evidence/ as soon as it is done; resumable.
curve: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m asdlib curve --jobs $(RUNS_JOBS)

# The same points on a machine with a CUDA GPU: the data generated with every core, the
# network's clips held on the GPU, the autoencoder beside it there.
curve-gpu: $(STAMP)
	OMP_NUM_THREADS=1 $(PY) -m asdlib curve --gpu

test: $(STAMP)
	$(PY) -m pytest

clean:
	rm -rf _build
