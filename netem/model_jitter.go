package netem

import (
	"math"
	"math/rand/v2"
)

// paretoCap is the largest value of tc-netem's 16-bit distribution tables,
// in units of sigma: 32767/NETEM_DIST_SCALE.
const paretoCap = 32767.0 / 8192.0

// openUnit returns a uniform sample in the open interval (0, 1): the midpoint
// of one of 2^53 equal cells, so that neither quantile function below sees 0
// or 1.
func openUnit(rng *rand.Rand) float64 {
	return (float64(rng.Uint64()>>11) + 0.5) * 0x1p-53
}

// paretoQuantile is tc-netem's pareto table as a function of u in (0, 1):
// the Pareto(shape 3, scale 1) quantile (1-u)^(-1/3), shifted by its mean
// 3/2 and scaled by 4/3, capped at paretoCap (iproute2's netem/pareto.c).
func paretoQuantile(u float64) float64 {
	return min((4.0/3.0)*(1/math.Cbrt(1-u)-1.5), paretoCap)
}

// paretoNormalQuantile is tc-netem's paretonormal table as a function of u:
// a quarter of the standard normal quantile plus three quarters of the
// Pareto one at the same u, clamped to the 16-bit table's range
// (iproute2's netem/paretonormal.c).
func paretoNormalQuantile(u float64) float64 {
	n := math.Sqrt2 * math.Erfinv(2*u-1)
	return max(min(0.25*n+0.75*paretoQuantile(u), paretoCap), -4)
}

// jitterSample returns Jitter*X in nanoseconds (see JitterDist). Uniform and
// Normal draw exactly as version 1 did, so their streams are unchanged.
func jitterSample(cfg *LinkConfig, rng *rand.Rand) int64 {
	j := float64(cfg.Jitter)
	switch cfg.JitterDist {
	case Normal:
		return int64(rng.NormFloat64() * j)
	case Pareto:
		return int64(paretoQuantile(openUnit(rng)) * j)
	case ParetoNormal:
		return int64(paretoNormalQuantile(openUnit(rng)) * j)
	default: // Uniform
		return rng.Int64N(int64(cfg.Jitter) + 1)
	}
}
