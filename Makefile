# Every target creates .venv on first use, so one command does all the set-up.
PY      := .venv/bin/python
STAMP   := .venv/.installed
DEVICE  ?= auto

.PHONY: demo test test-slow data clean bench bench-quick bench-budget

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)  ## distil digits with DM at IPC 1 beside random and herding, evaluate, say if DM beats random
	$(PY) experiments/demo.py --device $(DEVICE)

bench: $(STAMP)  ## the standard sweep (Fashion-MNIST, IPC 1/10/50; GPU-sized), then its tables
	.venv/bin/distill sweep experiments/sweeps/fmnist.yaml $(SWEEP_ARGS)
	$(PY) experiments/report_bench.py experiments/results/bench_fashion-mnist.json --name fmnist_bench
	$(PY) experiments/report.py

bench-quick: $(STAMP)  ## every method on digits at IPC 1 and 10 (< 30 min on 2 cores), tables
	DATADISTILL_COMPILE=0 .venv/bin/distill sweep experiments/sweeps/quick.yaml --workers 2 $(SWEEP_ARGS)
	$(PY) experiments/report_bench.py experiments/results/quick_digits.json
	$(PY) experiments/report.py

bench-budget: $(STAMP)  ## every image method, IPC 1 and 10, 900 CPU seconds of distillation each (hours)
	.venv/bin/distill sweep experiments/sweeps/fmnist_budget.yaml --workers 2 --threads 1 $(SWEEP_ARGS)
	$(PY) experiments/report.py

test: $(STAMP)  ## lint, then the fast test suite on two workers
	.venv/bin/ruff check core apps tests experiments
	.venv/bin/pytest -q -n 2 --dist loadgroup

test-slow: $(STAMP)
	.venv/bin/pytest -q -m slow

data:  ## Fashion-MNIST from Debian's dataset-fashion-mnist (needs root)
	@if [ -d /usr/share/datasets/fashion-mnist ]; then echo "fashion-mnist already installed"; \
	else apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; fi

clean:
	rm -rf runs .pytest_cache
