# The two commands a newcomer needs (see README); both install what they need:
#   make demo    the whole pipeline on this machine: local AWS, real Airflow 3, real model
#                (make demo FAIL=1: a training that fails; DRIFT=1: drifting traffic retrains;
#                 MODEL=<project>/<model>: one model;
#                 MODEL_REPO=<path>: a team's own model repository; PROJECT_FILE=<path>: its project file)
#   make test    the whole test suite
# and for the platform team:
#   make synth   synthesize every environment (no AWS account needed)
SHELL := /bin/bash
# Node 24 from package.json runs the CDK CLI and the jsii runtime behind aws-cdk-lib.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
CDK := npx --no-install cdk

.PHONY: demo synth test test-fast bootstrap tools benchmarks lint clean

bootstrap:
	@scripts/bootstrap.sh

tools: bootstrap
	@scripts/tool_venv.sh checkov requirements/checkov.txt
	@scripts/tool_venv.sh sagemaker-sdk model_template/requirements-experiment.txt
	@scripts/airflow_venv.sh

demo:
	@scripts/demo.sh

synth: bootstrap
	$(CDK) synth --no-lookups --quiet --output cdk.out
	@.venv/bin/python scripts/synth_summary.py cdk.out

test: tools
	@scripts/test.sh

# Fast loop while developing: the main virtualenv's tests only.
test-fast: bootstrap
	.venv/bin/python -m pytest -q -x

lint: bootstrap
	.venv/bin/ruff check .

benchmarks: tools
	.venv/bin/python benchmarks/synth_scaling.py
	.venv/bin/python benchmarks/serving.py
	.venv/bin/python benchmarks/dag_parse.py
	.venv/bin/python benchmarks/e2e_local.py
	.venv/bin/python benchmarks/ci_pipelines.py
	.venv/bin/python benchmarks/orchestration_capacity.py
	.venv/bin/python benchmarks/shadow_latency.py
	.venv/bin/python benchmarks/drift_check.py
	.venv/bin/python benchmarks/shadow_comparison.py

clean:
	rm -rf cdk.out .venv .venvs node_modules
