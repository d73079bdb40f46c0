package sim

import "math/bits"

// rng is a splitmix64 generator. It is tiny, allocation-free and fully
// specified by integer arithmetic, so a state derived from (seed, code,
// day, purpose) yields the same stream on every platform, independent of
// query order or concurrency.
type rng struct{ s uint64 }

// mix is the splitmix64 finaliser, a good 64-bit avalanche hash.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// intn returns a number in [0, n) for n > 0 (Lemire's multiply-high; the
// tiny bias is irrelevant here).
func (r *rng) intn(n int64) int64 {
	if n <= 0 {
		return 0
	}
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int64(hi)
}

// sym returns a number in [-v, v].
func (r *rng) sym(v int64) int64 { return r.intn(2*v+1) - v }

// Stream purposes: each derived state mixes one in, so the daily walk,
// the minute path and the order book draw from independent streams.
const (
	saltUniverse uint64 = 0x756e6976 + iota<<40
	saltDay
	saltMinute
	saltBook
	saltTrade
)

// newRNG derives the stream for one (seed, code, index, purpose).
func newRNG(seed int64, codeHash uint64, idx int64, salt uint64) rng {
	return rng{s: mix(uint64(seed) ^ mix(codeHash^mix(uint64(idx)^salt)))}
}

// chunks splits one draw into four 16-bit uniforms scaled to [0, n_k):
// the daily walk needs several small numbers per day, and one draw is
// cheaper than four.
func (r *rng) chunks(n0, n1, n2, n3 int64) (a, b, c, d int64) {
	x := r.next()
	a = int64((x & 0xffff) * uint64(n0) >> 16)
	b = int64((x >> 16 & 0xffff) * uint64(n1) >> 16)
	c = int64((x >> 32 & 0xffff) * uint64(n2) >> 16)
	d = int64((x >> 48) * uint64(n3) >> 16)
	return a, b, c, d
}

// fnv1a hashes a code string (FNV-1a, 64 bit).
func fnv1a(s string) uint64 {
	h := uint64(0xcbf29ce484222325)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 0x100000001b3
	}
	return h
}
