# The two commands a newcomer needs (see README):
#   make synth   synthesize every environment (no AWS account needed)
#   make test    install everything and run the whole test suite
SHELL := /bin/bash
# Node 24 from package.json runs the CDK CLI and the jsii runtime behind aws-cdk-lib.
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
CDK := npx --no-install cdk

.PHONY: synth test test-fast bootstrap tools benchmarks lint clean

bootstrap:
	@scripts/bootstrap.sh

tools: bootstrap
	@scripts/tool_venv.sh checkov requirements/checkov.txt
	@scripts/tool_venv.sh sagemaker-sdk model_template/requirements-experiment.txt
	@scripts/airflow_venv.sh

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

clean:
	rm -rf cdk.out .venv .venvs node_modules
