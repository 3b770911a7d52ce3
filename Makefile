# Vigil — one front door. `make` runs what CI runs.
.DEFAULT_GOAL := pr
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vigil-installed
VIDEO ?= worker/local/sample/one-by-one-person-detection.mp4
SPEED ?= 4
ARGS ?=

.PHONY: pr setup demo test lint clean

pr: lint test

# The virtualenv is rebuilt when pyproject.toml or the lock file change.
$(STAMP): pyproject.toml requirements.lock
	@echo "==> setting up $(VENV) with pinned packages (first run takes ~5 min: PyTorch is large)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

setup: $(STAMP)

demo: $(STAMP)
	@echo "==> running the whole Vigil loop locally on $(VIDEO) (speed x$(SPEED))"
	$(BIN)/python -m worker.local.demo --video "$(VIDEO)" --speed $(SPEED) $(ARGS)

test: $(STAMP)
	@echo "==> running the test suite"
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf out .pytest_cache

# --- infra/ (issue 8) --------------------------------------------------------------------------------
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_VERSION := 3.3.30

.PHONY: infra-check tf-check checkov

# Offline: every .tf parses (python-hcl2), wiring, security and least-privilege tests. Where a terraform
# binary is installed (and can fetch the AWS provider): terraform fmt -check and validate as well.
infra-check: $(STAMP)
	@echo "==> infra: offline checks (every .tf parses; wiring, security, least privilege vs the code's boto3 calls)"
	$(BIN)/python -m pytest tests/infra -q -rs $(ARGS)
	@if ! command -v terraform >/dev/null 2>&1; then \
	  echo "==> infra: no terraform binary on PATH: terraform fmt -check and validate skipped (install Terraform >= 1.11 to run them)"; \
	else \
	  echo "==> infra: terraform fmt -check" && terraform -chdir=infra fmt -check -recursive || exit 1; \
	  if terraform -chdir=infra init -backend=false -input=false >/tmp/vigil-tf-init.log 2>&1; then \
	    echo "==> infra: terraform validate" && terraform -chdir=infra validate || exit 1; \
	  else \
	    echo "==> infra: terraform validate skipped: 'terraform init' could not install the AWS provider (no registry access?): see /tmp/vigil-tf-init.log"; \
	    rm -rf infra/.terraform; \
	  fi; \
	fi

tf-check: infra-check

# checkov lives in its own virtualenv (inside .venv/, which git and ruff ignore): it pins boto3 1.35 and
# packaging 23, which conflict with ours.
$(CHECKOV_VENV)/.installed:
	@echo "==> setting up $(CHECKOV_VENV) with checkov $(CHECKOV_VERSION) (about 1 minute)"
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check checkov==$(CHECKOV_VERSION) 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $@

checkov: $(CHECKOV_VENV)/.installed
	@echo "==> checkov over infra/ (each skip is a #checkov:skip=ID:reason comment inside its resource)"
	$(CHECKOV_VENV)/bin/checkov -d infra --framework terraform --compact --quiet --skip-download

# --- alerts (issue 7) --------------------------------------------------------------------------------
.PHONY: package-lambda bench-alerts

# Reproducible zip for infra/ (alerts module: lambda_zip_path = ../dist/alert_lambda.zip): our code plus
# the pinned wheels for the Lambda runtime (python3.12, ARCH=x86_64|arm64), fetched once into dist/wheels-cache.
package-lambda: $(STAMP)
	@echo "==> building dist/alert_lambda.zip (alert_lambda + contracts + pinned wheels for python3.12 $(or $(ARCH),x86_64))"
	$(BIN)/python -m alert_lambda.package --out dist/alert_lambda.zip --wheel-dir dist/wheels-cache/$(or $(ARCH),x86_64) --arch $(or $(ARCH),x86_64) --download
	@sha256sum dist/alert_lambda.zip

bench-alerts: $(STAMP)
	@echo "==> alert path benchmark: end-to-end latency detected_at -> SQS, alerts/s per Lambda invocation (~3 min)"
	$(BIN)/python bench/bench_alerts.py $(ARGS)

# --- KVS: camera simulator and worker benchmark -------------------------------------------------
STREAM ?=
.PHONY: camera-sim bench-worker

# Streams VIDEO into the KVS stream STREAM with PutMedia (signed, chunked MKV), as a camera would.
camera-sim: $(STAMP)
	@test -n "$(STREAM)" || { echo "usage: make camera-sim STREAM=<kvs-stream> VIDEO=<file> [ARGS='--speed 1 --loop 3']"; exit 2; }
	@echo "==> streaming $(VIDEO) into KVS stream $(STREAM) (PutMedia)"
	$(BIN)/python -m worker.kvs.camera_sim --stream "$(STREAM)" --video "$(VIDEO)" $(ARGS)

bench-worker: $(STAMP)
	@echo "==> worker throughput on 720p30 KVS fragments (bench/results/worker.json)"
	$(BIN)/python bench/bench_worker.py $(ARGS)

# --- operator console ------------------------------------------------------------------------------
.PHONY: console

# The console on 127.0.0.1 over a moto server seeded with alerts cut from the bundled sample video;
# prints the URL (with its login token). ARGS="--port 9000 --sites demo-hq" to change it.
# FROM_DEMO=out/demo: over the alerts, snapshots and clips a `make demo` run saved there instead.
FROM_DEMO ?=
console: $(STAMP)
ifeq ($(FROM_DEMO),)
	@echo "==> operator console (python -m console --demo): alerts with snapshots and clips from the sample video"
	$(BIN)/python -m console --demo $(ARGS)
else
	@echo "==> operator console (python -m console --from-demo $(FROM_DEMO)): the alerts of the demo run saved there"
	$(BIN)/python -m console --from-demo "$(FROM_DEMO)" $(ARGS)
endif

# --- model: training (local or SageMaker) and its benchmark on real footage -------------------------
DATA ?= out/demo/channel/train
TARGET ?= local
MODEL_DIR ?= out/model
.PHONY: train bench-model

# Local: python -m training on DATA (a manifest or a folder of them; default: what `make demo` archived).
# TARGET=aws: a SageMaker training job (sagemaker.train.ModelTrainer) on the archive bucket's clips;
# ARGS="--bucket B --role ARN --dry-run" (defaults: $$VIGIL_ARCHIVE_BUCKET, $$VIGIL_TRAINING_ROLE_ARN).
train: $(STAMP)
ifeq ($(TARGET),aws)
	@echo "==> launching a SageMaker training job (python -m training.launch)"
	$(BIN)/python -m training.launch $(ARGS)
else ifeq ($(TARGET),local)
	@echo "==> training on $(DATA) into $(MODEL_DIR) (python -m training)"
	$(BIN)/python -m training --train "$(DATA)" --model-dir "$(MODEL_DIR)" $(ARGS)
else
	@echo "TARGET must be local or aws, got '$(TARGET)'"; exit 2
endif

bench-model: $(STAMP)
	@echo "==> model on UCSD Ped2 dev (../shared/data/ucsd_ped2_dev): seeds 0-2, as is and prefix-cut, vs frame difference and DIS flow (bench/results/model.json)"
	$(BIN)/python -m bench.bench_model $(ARGS)

# --- inference endpoint: deploy to AWS and benchmark --------------------------------------------------
DRY_RUN ?=
MODEL ?= $(MODEL_DIR)/model.tar.gz
.PHONY: deploy bench-inference

# Images to ECR, artifact to S3, blue/green endpoint update with alarm rollback, ECS service roll.
# Names come from `terraform output -json` in infra/ (ARGS="--outputs file.json" to give them).
deploy: $(STAMP)
	@echo "==> deploying $(MODEL) and the current code$(if $(filter 1 true yes,$(DRY_RUN)), (dry run: printing every call, making none))"
	$(BIN)/python -m inference.deploy --model "$(MODEL)" $(if $(filter 1 true yes,$(DRY_RUN)),--dry-run) $(ARGS)

bench-inference: $(STAMP)
	@echo "==> inference benchmark: raw forward vs /invocations over HTTP (bench/results/inference.json, ~2 min)"
	$(BIN)/python bench/bench_inference.py $(ARGS)
