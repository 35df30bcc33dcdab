# Developer shortcuts; CI runs README's test command (see .ci/run).
.PHONY: dev test lint bench

dev:
	python -m pip install -e '.[test]'

test:
	cargo test && python -m pytest

lint:
	cargo fmt --check
	cargo clippy --all-targets --features python -- -D warnings
	python -m ruff check python tests benches
	python -m ruff format --check python tests benches
	python -m mypy python/kdmetrics
	python -m mypy.stubtest kdmetrics._core

bench:
	python benches/bench_metrics.py
	python benches/bench_bootstrap.py
