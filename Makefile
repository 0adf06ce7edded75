# Every target does its own set-up, so `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-scale test-browser install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# torch==2.13.0 first: it is a local CPU build; a bare `torch` could pull a multi-GB CUDA build.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p sample_data/out
	$(PY) sample_data/make_samples.py --out sample_data
	$(VENV)/bin/attnad detect sample_data/transactions_labelled.csv -c configs/tabular.yaml \
		--set data.label_column=is_anomaly --set data.id_columns='[txn_id]' \
		-o sample_data/out/detected.csv --summary-json sample_data/out/summary.json --seed 0
	$(VENV)/bin/attnad detect sample_data/machines.csv --set data.time_column=time \
		--set data.group_column=machine --set data.label_column=is_anomaly \
		-o sample_data/out/machines_detected.csv --events sample_data/out/machines_events.csv \
		--report sample_data/out/machines_report.html --seed 0

test: $(STAMP)
	$(PY) -m pytest -q

# Ray and torchrun smoke tests: start real processes, so they are kept out of `make test`
test-scale: $(STAMP)
	$(PY) -m pip install --quiet -e '.[ray]'
	$(PY) -m pytest -q -m scale tests/test_scale.py

# The HTML report in headless chromium (Debian's package; `make test` skips it when absent)
test-browser: $(STAMP)
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)
	$(PY) -m pytest -q tests/test_report_browser.py

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/accuracy.py

clean:
	rm -rf $(VENV) sample_data/out build *.egg-info
