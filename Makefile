# The two commands that matter: `make run` (the whole system with a demo) and `make test`.
SHELL := /bin/bash
UV ?= uv
INFRA := deploy/local/infra.sh

.PHONY: help install infra-up infra-down infra-status run stop test test-unit lint typecheck docs docs-check bench bench-ab bench-email faults clean \
	docker-setup images up down logs

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

install:  ## install Python, uv and the locked dependencies when missing
	@deploy/local/bootstrap.sh

infra-up: install  ## install and start Kafka, PostgreSQL and the dev SMTP server (idempotent)
	@$(INFRA) up

infra-down:  ## stop what infra-up started
	@$(INFRA) down

infra-status:  ## where the broker, database and SMTP server listen, and whether they answer
	@$(INFRA) status

run: infra-up  ## start every service, run a short demo that prints what came out, show Prometheus
	@$(UV) run python -m deploy.local.launcher up
	@$(UV) run python -m deploy.local.demo
	@$(UV) run python -m services.operations.prometheus_targets

stop:  ## stop the services started by `make run`
	@$(UV) run python -m deploy.local.launcher down

docker-setup:  ## install Debian's Docker engine when missing and start it (a running one is left alone)
	@deploy/docker/engine.sh up

images: docker-setup  ## build the container images whose inputs changed (tagged by a hash of them)
	@python3 deploy/docker/images.py build

up:  ## the whole stack in containers (deploy/docker-compose.yml), then the demo against it
	@deploy/docker/stack.sh up
	@deploy/docker/stack.sh demo
	@deploy/docker/stack.sh where

down:  ## stop and remove the stack's containers (its volumes stay)
	@deploy/docker/stack.sh down

logs:  ## follow the container stack's logs (make logs SERVICE=billing for one)
	@deploy/docker/stack.sh logs $(SERVICE)

test: infra-up images  ## the whole suite: lint, types, docs check, unit, integration, end-to-end, containers
	@$(MAKE) --no-print-directory lint typecheck docs-check
	@$(UV) run pytest -q

test-unit: install  ## unit tests only (no infrastructure)
	@$(UV) run pytest -q tests/unit

lint: install
	@$(UV) run ruff check .
	@$(UV) run ruff format --check .

typecheck: install
	@$(UV) run mypy services shared bench deploy/local/launcher.py deploy/local/demo.py deploy/local/client.py deploy/local/samples.py

docs: install  ## regenerate the AsyncAPI document from the apps
	@$(UV) run python -m services.asyncapi write docs/asyncapi.json

docs-check: install  ## fail when docs/asyncapi.json is not what the apps generate
	@$(UV) run python -m services.asyncapi check docs/asyncapi.json

bench-email: install  ## CPU µs per email: render, MIME, SMTP (against the bench's SMTP sink)
	@$(UV) run python -m bench.email_cost $(BENCH_EMAIL_ARGS)

bench: infra-up  ## renewals per second and CPU per renewal, manual and automatic, at 1M subscriptions too; emails checked
	@$(UV) run python -m bench.run $(BENCH_ARGS)

bench-ab: infra-up  ## A/B of the bench: BASE=<commit> [HEAD=<commit>] [PAIRS=4] [AB_ARGS="bench.run options"], runs alternated
	@test -n "$(BASE)" || { echo 'make bench-ab: BASE=<commit> is needed (HEAD defaults to this checkout)' >&2; exit 2; }
	@$(UV) run python -m bench.ab --base $(BASE) $(if $(HEAD),--head $(HEAD)) --pairs $(or $(PAIRS),4) $(if $(AB_ARGS),-- $(AB_ARGS))

faults: infra-up  ## the fault suite: 10,000 renewals while services, broker and database are killed
	@$(UV) run python -m tests.faults.run $(FAULTS_ARGS)

clean: infra-down
	@if [[ -L .local/pg ]]; then rm -rf "$$(readlink -f .local/pg)"; fi  # data kept outside the clone (infra.sh)
	rm -rf .local
