.DEFAULT_GOAL := help
.PHONY: help setup run test lint stack-up stack-down

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

setup: ## install system packages and the Python environment (.venv)
	scripts/bootstrap

run: ## set everything up and run the system
	scripts/run

test: ## set everything up, start the services, run lint, types and all tests
	scripts/test

lint: ## ruff and mypy only
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy

stack-up: ## start Kafka, InfluxDB, HBase (and check Spark)
	.venv/bin/footfall stack up

stack-down: ## stop them
	.venv/bin/footfall stack down
