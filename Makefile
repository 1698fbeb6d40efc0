.PHONY: setup demo test bench dashboards clean
setup:
	bash scripts/setup.sh
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
bench: setup
	.venv/bin/python benchmarks/bench_matrix.py
	.venv/bin/python benchmarks/bench_probers.py
dashboards:
	.venv/bin/python -m dashboards.generate
clean:
	.venv/bin/segcheck lab down || true
	rm -rf .venv build *.egg-info
