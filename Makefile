# Vigil — one front door. `make` runs what CI runs.
.DEFAULT_GOAL := pr
SHELL := /bin/bash

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.vigil-installed
VIDEO ?= local/sample/one-by-one-person-detection.mp4
SPEED ?= 4
ARGS ?=

.PHONY: pr setup demo test lint docs clean

pr: lint test docs

# The virtualenv is rebuilt when pyproject.toml or the lock file change.
$(STAMP): pyproject.toml requirements.lock
	@echo "==> setting up $(VENV) with pinned packages (first run takes ~5 min: PyTorch is large)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | { grep -v "is ignored: it is neither" || true; }; test $${PIPESTATUS[0]} -eq 0
	@touch $(STAMP)
	@echo "==> $(VENV) ready"

setup: $(STAMP)

# MODEL=out/model/model.tar.gz (given on the command line or in the environment): serve that trained
# model instead of archiving and training on the video's first seconds.
DEMO_MODEL = $(if $(filter command line environment,$(origin MODEL)),--model "$(MODEL)")
demo: $(STAMP)
	@echo "==> running the whole Vigil loop locally on $(VIDEO) (speed x$(SPEED))$(if $(DEMO_MODEL), with the model $(MODEL))"
	$(BIN)/python -m local.demo --video "$(VIDEO)" --speed $(SPEED) $(DEMO_MODEL) $(ARGS)

test: $(STAMP)
	@echo "==> running the test suite"
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

# The documentation site (mkdocs.yml, docs/): built with --strict into site/ (git-ignored); the
# configuration reference is generated from the pydantic models as it builds (docs/gen_config.py).
docs: $(STAMP)
	@echo "==> building the documentation site into site/ (mkdocs build --strict); open site/index.html"
	$(BIN)/mkdocs build --strict --quiet

clean:
	rm -rf out site .pytest_cache

# --- infra/ (issue 8) --------------------------------------------------------------------------------
CHECKOV_VENV := $(VENV)/checkov
CHECKOV_VERSION := 3.3.30

TF_SCHEMA_DIR := ../shared/tools/terraform-schema

.PHONY: infra-check tf-check tf-schema checkov

# Offline: every .tf parses (python-hcl2), wiring, security and least-privilege tests, and the provider
# schema check (hashicorp/aws 6.20.0: unknown types/arguments/attributes, missing required arguments,
# module wiring, cycles; exit 1 on any error). Where a terraform binary is installed (and can fetch the
# AWS provider): terraform fmt -check and validate as well.
infra-check: $(STAMP)
	@echo "==> infra: offline checks (every .tf parses; wiring, security, least privilege vs the code's boto3 calls)"
	$(BIN)/python -m pytest tests/infra -q -rs $(ARGS)
	@if [ -f $(TF_SCHEMA_DIR)/tfschema_check.py ]; then \
	  $(MAKE) --no-print-directory tf-schema || exit 1; \
	else \
	  echo "==> infra: $(TF_SCHEMA_DIR) is absent: provider schema check skipped (CI runs it: make tf-schema)"; \
	fi
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

# The provider schema check alone; fails when the tool is absent (CI has ../shared beside the clone).
tf-schema: $(STAMP)
	@echo "==> infra: schema check against hashicorp/aws 6.20.0 ($(TF_SCHEMA_DIR))"
	$(BIN)/python $(TF_SCHEMA_DIR)/tfschema_check.py $(TF_SCHEMA_DIR)/aws_schema_6.20.0.json infra

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

# Cost per camera-month (issue 16): prices in bench/prices.json (named, dated), work per camera from
# bench/results/worker.json and inference.json.
CAMERAS ?= 1000
BITRATE_MBPS ?= 2
FPS ?= 1

.PHONY: cost
cost: $(STAMP)
	$(BIN)/python bench/cost.py --cameras $(CAMERAS) --bitrate-mbps $(BITRATE_MBPS) --fps $(FPS) $(ARGS)

# --- alerts (issue 7) --------------------------------------------------------------------------------
.PHONY: package-lambda bench-alerts redrive-alerts

# Reproducible zip for infra/ (alerts module: lambda_zip_path = ../dist/alert_lambda.zip): our code plus
# the pinned wheels for the Lambda runtime (python3.12, ARCH=x86_64|arm64), fetched once into dist/wheels-cache.
package-lambda: $(STAMP)
	@echo "==> building dist/alert_lambda.zip (alert_lambda + contracts + pinned wheels for python3.12 $(or $(ARCH),x86_64))"
	$(BIN)/python -m alert_lambda.package --out dist/alert_lambda.zip --wheel-dir dist/wheels-cache/$(or $(ARCH),x86_64) --arch $(or $(ARCH),x86_64) --download
	@sha256sum dist/alert_lambda.zip

bench-alerts: $(STAMP)
	@echo "==> alert path benchmark: end-to-end latency detected_at -> SQS, alerts/s per Lambda invocation, SNS outage and lost responses (~4 min)"
	$(BIN)/python bench/bench_alerts.py $(ARGS)

# After an outage longer than the mapping's record age (issue 15): deliver the ranges it discarded to the
# DLQ, read back from the stream (run with the function's environment: VIGIL_*, AWS_*).
redrive-alerts: $(STAMP)
	@test -n "$(QUEUE_URL)" || { echo "usage: make redrive-alerts QUEUE_URL=<the alert DLQ URL> [ARGS=--dry-run]"; exit 2; }
	@echo "==> redrive: discarded alert ranges in $(QUEUE_URL) -> stream -> alert handler"
	$(BIN)/python -m alert_lambda.redrive --queue-url $(QUEUE_URL) $(ARGS)

# --- KVS: camera simulator and worker benchmark -------------------------------------------------
STREAM ?=
.PHONY: camera-sim bench-worker

# Streams VIDEO into the KVS stream STREAM with PutMedia (signed, chunked MKV), as a camera would.
camera-sim: $(STAMP)
	@test -n "$(STREAM)" || { echo "usage: make camera-sim STREAM=<kvs-stream> VIDEO=<file> [ARGS='--region eu-west-1 --speed 1 --loop 3']"; exit 2; }
	@echo "==> streaming $(VIDEO) into KVS stream $(STREAM) (PutMedia)"
	$(BIN)/python -m kvs.camera_sim --stream "$(STREAM)" --video "$(VIDEO)" $(ARGS)

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
	@echo "==> operator console (python -m local.console --demo): alerts with snapshots and clips from the sample video"
	$(BIN)/python -m local.console --demo $(ARGS)
else
	@echo "==> operator console (python -m local.console --from-demo $(FROM_DEMO)): the alerts of the demo run saved there"
	$(BIN)/python -m local.console --from-demo "$(FROM_DEMO)" $(ARGS)
endif

# --- model: training (local or SageMaker) and its benchmark on real footage -------------------------
DATA ?= out/demo/channel/train
TARGET ?= local
MODEL_DIR ?= out/model
.PHONY: train bench-model

# Local: python -m training on DATA: a manifest or a folder of them (default: what `make demo` archived;
# DATA=out/demo adds the reviews a `make console FROM_DEMO=out/demo` saved), or a video or a folder of
# videos, for which it writes the manifest itself (ARGS="--camera-id lobby-1"; `--steps 200` for a quick look).
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
	$(BIN)/python -m bench.bench_inference $(ARGS)

# --- worker restarts (issue 22) -------------------------------------------------------------------
.PHONY: bench-restarts

# A worker killed with SIGKILL at random moments beside one never killed, on the same live KVS stream:
# events missing, events under a second id, repeats, restart to first analysed frame (bench/results/restarts.json).
bench-restarts: $(STAMP)
	@echo "==> worker restarts: SIGKILL at random moments vs a clean run (bench/results/restarts.json, ~2 min)"
	$(BIN)/python bench/bench_restarts.py $(ARGS)
