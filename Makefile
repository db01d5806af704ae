# One-command set-up: `make demo` and `make test` each build/refresh .venv from requirements.txt first.
# CPU is the default; `make install GPU=1` installs tensorflow[and-cuda] from requirements-gpu.txt instead
# (an existing CPU .venv is replaced: the two TensorFlow builds never share one environment).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
GPU    ?=
REQS   := $(if $(filter 1 yes true,$(GPU)),requirements-gpu.txt,requirements.txt)
STAMP  := $(VENV)/.installed-$(basename $(REQS))
# Debian packages some features use (WAV through FluidSynth; browser tests). Installed when missing and we are root.
APT_PACKAGES ?= fluidsynth fluid-soundfont-gm chromium abcmidi abcm2ps

.PHONY: install system-deps test test-fast demo bench web clean

$(STAMP): $(REQS) pyproject.toml
	@other=$(VENV)/.installed-$(if $(filter requirements.txt,$(REQS)),requirements-gpu,requirements); \
	if [ -e $$other ]; then echo "replacing $(VENV) (it holds the other TensorFlow build)"; rm -rf $(VENV); fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r $(REQS)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "warning: could not install$$missing; features that need them fall back or skip"; \
	  else echo "note: Debian packages not installed:$$missing (run as root or install them yourself)"; fi; \
	fi

test: install system-deps
	$(PY) -m pytest -q -p no:cacheprovider

test-fast: install
	$(PY) -m pytest -q -p no:cacheprovider -m "not slow"

demo: install system-deps
	$(PY) -m app names generate -n 12
	$(PY) -m app music generate -n 1 --bars 8 --seed 1

web: install system-deps
	$(PY) -m app web

bench: install system-deps
	$(PY) bench/names.py
	$(PY) bench/music.py
	$(PY) bench/corpus.py
	$(PY) bench/web.py

clean:
	rm -rf $(VENV) outputs/names outputs/music outputs/reports
