# Inference server load test (not part of `make test`): wrk against
# `kiln serve` for 30 s at 64 connections, beside the engine's own speed.
# It serves $(OUT)/mnist.kiln (from `make run`) when there is one; without
# it the script writes a model with random weights (a model named to the
# script must exist).
.PHONY: load
load:
	bash bench/load/run.sh $(if $(wildcard $(OUT)/mnist.kiln),$(OUT)/mnist.kiln)
