# Inference server load test (not part of `make test`): wrk against
# `kiln serve` for 30 s at 64 connections, beside the engine's own speed.
.PHONY: load
load:
	bash bench/load/run.sh $(OUT)/mnist.kiln
