//go:build cuda

package main

// The CUDA backend: the loader registers "cuda" and, once a dlopen probe
// finds a driver and a device, loads the real backend from the plugin
// kiln-cuda.so next to this executable (or $KILN_CUDA_PLUGIN). This binary
// never links libcuda, so it starts on hosts without a GPU.
import _ "github.com/kiln-ml/kiln/backend/cuda/loader"
