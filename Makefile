# The two commands: `make run` (set up, create the demo database if missing, start the app)
# and `make test` (set up with the dev tools, lint, run the tests).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
DB     ?= data/workbench.duckdb
PORT   ?= 8501

.PHONY: run test install lint demo clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch first, pinned to the CPU wheel: an unpinned torch pulls several GB of CUDA wheels.
$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

$(DB): | install
	$(BIN)/workbench demo --db $(DB) --participants 300 --seed 0 --invites 0

demo: install
	$(BIN)/workbench demo --db $(DB) --participants 300 --seed 0 --invites 0

run: install $(DB)
	@echo ""
	@echo "Participant invite link (new each run; the database keeps only its hash):"
	@WORKBENCH_BASE_URL=http://127.0.0.1:$(PORT) $(BIN)/workbench invite demo -n 1 --db $(DB) | tail -n +2
	@echo "Open sign-up link (shows the consent; agreeing makes a fresh anonymous participant): http://127.0.0.1:$(PORT)/?join=demo"
	@$(BIN)/workbench user ensure-demo --db $(DB)
	@echo "Facilitators and researchers: open http://127.0.0.1:$(PORT), choose 'Staff sign-in' and use"
	@echo "  facilitator / demo-facilitator  or  researcher / demo-researcher (change them: workbench user set-password NAME)"
	@echo ""
	$(BIN)/workbench serve --db $(DB) --port $(PORT)

lint: install
	$(BIN)/ruff check .

test: install lint
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) $(DB) $(DB).wal

# Speed and quality measurements (several minutes: the dedup benchmark embeds the 625 MGE cards five
# times, and twice more with all-mpnet-base-v2 when the '.[mpnet]' extra is installed).
bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_graph.py
	$(BIN)/python benchmarks/bench_polis_groups.py
	$(BIN)/python benchmarks/bench_prefs.py
	$(BIN)/python benchmarks/bench_dedup.py
	$(BIN)/python benchmarks/bench_store_load.py --threads 200 --seconds 20 --baseline-seconds 10
	$(BIN)/python benchmarks/bench_serve.py --sessions 200 --idle-seconds 60
	$(BIN)/python benchmarks/bench_app_load.py --participants 30 --ramp 10 --minutes 15
	$(BIN)/python benchmarks/bench_workers.py --client protocol --participants 40 --ramp 5 --rounds 2
	$(BIN)/python benchmarks/collect_results.py
