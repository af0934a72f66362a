# Two entry points (see README): `make demo` and `make test`. Each creates or refreshes .venv/ as needed.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := torch,blender,eval,dev
# The add-on's tests also run on these Blender releases (the latest patches of the 4.2 and 4.5 LTS bpy wheels;
# .venv has 5.0.1). Each gets .venv-bpyXY/: a venv holding only that bpy, layered over .venv's packages by a .pth
# file, so it costs one wheel install, and is re-made only when its version changes. `make test MATRIX=` skips it.
MATRIX ?= 4.2.23 4.5.15
MATRIX_PYTEST_ARGS ?= tests/test_addon.py

.PHONY: demo test test-matrix lint venv clean-venv addon system-tools

venv: $(STAMP)

# Re-install only when pyproject.toml changes: a second run with nothing changed takes seconds.
$(STAMP): pyproject.toml blender_addon/blender_manifest.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	# ColorVideoVDP without its dependencies: its torchvision pin would pull another torch (see render_eval.metrics)
	$(BIN)/python -m pip install --quiet --no-deps cvvdp==0.5.7 torchvision==0.28.0
	# the ONNX Runtime wheel the Blender extension bundles (so building it, and its tests, need no network)
	$(BIN)/python -m blender_addon.build --fetch-only --platform linux-x64
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m hdr_core.demo --out out/demo

# Optional system programs some slow tests use: Debian's `blender` (render_eval/run.py inside a real Blender binary)
# and `chromium` (the report opens with every image). Installed with apt when missing and we are root; a failure only
# skips those tests. SKIP_SYSTEM_TOOLS=1 turns this off.
system-tools:
	@if [ -z "$(SKIP_SYSTEM_TOOLS)" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  ! { command -v blender >/dev/null && command -v chromium >/dev/null; }; then \
	  echo "installing blender and chromium (apt) for the slow tests"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    blender chromium >/dev/null; } || echo "apt install failed: those tests will be skipped"; fi

test: $(STAMP) system-tools
	$(BIN)/python -m ruff check .
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-matrix

# The add-on's tests on each Blender of MATRIX (see above).
test-matrix: $(STAMP)
	@set -e; base="$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
	for v in $(MATRIX); do \
	  d=.venv-bpy$$(echo $$v | cut -d. -f1,2 | tr -d .); \
	  if [ "$$(cat $$d/.installed 2>/dev/null)" != "$$v $$base" ]; then \
	    echo "== $$d: bpy $$v over $(VENV)"; rm -rf $$d; $(BIN)/python -m venv --without-pip $$d; \
	    $(BIN)/python -m pip --python "$$d/bin/python" install --quiet --no-deps "bpy==$$v"; \
	    site="$$($$d/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"; \
	    echo "import site; site.addsitedir('$$base')" > "$$site/zz_lanet_hdr_base.pth"; \
	    echo "$$v $$base" > $$d/.installed; fi; \
	  echo "== add-on tests on bpy $$v ($$d)"; \
	  $$d/bin/python -c "import bpy; assert bpy.app.version_string.startswith('$$v'), bpy.app.version_string; import os; os._exit(0)"; \
	  $$d/bin/python -m pytest -q -p no:cacheprovider $(MATRIX_PYTEST_ARGS); \
	done

# The installable Blender extension zips (one per platform) in dist/.
addon: $(STAMP)
	$(BIN)/python -m blender_addon.build --out dist/

lint: $(STAMP)
	$(BIN)/python -m ruff check .

clean-venv:
	rm -rf $(VENV) .venv-bpy*
