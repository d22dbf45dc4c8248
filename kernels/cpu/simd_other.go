//go:build !amd64

package cpu

// poolVec reports whether vector pooling loops exist: not off amd64.
func poolVec(int) bool { return false }

func maxPoolRowVec(PoolShape, []float32, []float32, []float32) {}

func maxPoolBackRowVec(PoolShape, []float32, []float32, []float32) {}

// biasAddVec has no vector loop off amd64.
func biasAddVec([]float32, []float32, int, int) bool { return false }

// gemv64 has no vector loop off amd64.
func gemv64([]float32, []float32, int, *[64]float32) bool { return false }

// biasGradVec has no vector loop off amd64.
func biasGradVec([]float32, []float64, int, int) bool { return false }

func convPoolVec(ConvShape, []float32, []float32, []float32, int, []float32, bool) {}

func convRowsVec(ConvShape, []float32, []float32, []float32, int, []float32, bool, bool) {}

// hasFMA: no FMA vector loops off amd64.
const hasFMA = false

func gemv64Add([]float32, []float32, int, []float32) {}

func packA12Vec([]float32, []float32, int, int, int) int { return 0 }
