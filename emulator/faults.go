package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Latency is a distribution of added response delay. The zero value adds
// none.
//
// Spec syntax (ParseLatency, --latency, the latency= fault):
//
//	20ms                  fixed delay (also "fixed:20ms")
//	uniform:5ms-50ms      uniform between the two bounds
//	normal:20ms,5ms       normal with mean 20ms and standard deviation 5ms
//	                      (also "normal:20ms/5ms"); negative draws become 0
//	0, none, ""           no delay
type Latency struct {
	// Dist is "", "fixed", "uniform" or "normal".
	Dist string
	// A is the fixed delay, the uniform lower bound or the normal mean.
	A time.Duration
	// B is the uniform upper bound or the normal standard deviation.
	B time.Duration
}

// ParseLatency parses a latency spec; see [Latency] for the syntax.
func ParseLatency(spec string) (Latency, error) {
	s := strings.TrimSpace(spec)
	switch strings.ToLower(s) {
	case "", "0", "none", "off":
		return Latency{}, nil
	}
	kind, rest, hasKind := strings.Cut(s, ":")
	if !hasKind {
		kind, rest = "fixed", s
	}
	bad := func(format string, a ...any) (Latency, error) {
		return Latency{}, fmt.Errorf("latency %q: "+format, append([]any{spec}, a...)...)
	}
	dur := func(v string) (time.Duration, error) {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return 0, fmt.Errorf("latency %q: %q is not a duration like 20ms", spec, v)
		}
		if d < 0 {
			return 0, fmt.Errorf("latency %q: %q is negative", spec, v)
		}
		return d, nil
	}
	// durs parses the two durations of a uniform or normal spec.
	durs := func(x, y string) (a, b time.Duration, err error) {
		if a, err = dur(x); err != nil {
			return 0, 0, err
		}
		if b, err = dur(y); err != nil {
			return 0, 0, err
		}
		return a, b, nil
	}
	switch strings.ToLower(kind) {
	case "fixed":
		d, err := dur(rest)
		if err != nil {
			return Latency{}, err
		}
		if d == 0 {
			return Latency{}, nil
		}
		return Latency{Dist: "fixed", A: d}, nil
	case "uniform":
		lo, hi, ok := strings.Cut(rest, "-")
		if !ok {
			return bad("want uniform:MIN-MAX like uniform:5ms-50ms")
		}
		a, b, err := durs(lo, hi)
		if err != nil {
			return Latency{}, err
		}
		if b < a {
			return bad("max %s is below min %s", b, a)
		}
		return Latency{Dist: "uniform", A: a, B: b}, nil
	case "normal":
		mean, sd, ok := strings.Cut(rest, ",")
		if !ok {
			mean, sd, ok = strings.Cut(rest, "/")
		}
		if !ok {
			return bad("want normal:MEAN,STDDEV like normal:20ms,5ms")
		}
		a, b, err := durs(mean, sd)
		if err != nil {
			return Latency{}, err
		}
		return Latency{Dist: "normal", A: a, B: b}, nil
	}
	return bad("unknown distribution %q: want fixed, uniform or normal", kind)
}

// String returns the spec ParseLatency accepts.
func (l Latency) String() string {
	switch l.Dist {
	case "fixed":
		return l.A.String()
	case "uniform":
		return "uniform:" + l.A.String() + "-" + l.B.String()
	case "normal":
		return "normal:" + l.A.String() + "," + l.B.String()
	}
	return ""
}

// IsZero reports whether l adds no delay.
func (l Latency) IsZero() bool { return l.Dist == "" || (l.Dist == "fixed" && l.A == 0) }

// MarshalText encodes l as its spec.
func (l Latency) MarshalText() ([]byte, error) { return []byte(l.String()), nil }

// UnmarshalText parses a spec.
func (l *Latency) UnmarshalText(b []byte) error {
	v, err := ParseLatency(string(b))
	if err != nil {
		return err
	}
	*l = v
	return nil
}

// sample draws one delay.
func (l Latency) sample(r *rand.Rand) time.Duration {
	switch l.Dist {
	case "fixed":
		return l.A
	case "uniform":
		if l.B <= l.A {
			return l.A
		}
		return l.A + time.Duration(r.Int64N(int64(l.B-l.A)+1))
	case "normal":
		d := time.Duration(float64(l.A) + r.NormFloat64()*float64(l.B))
		return max(d, 0)
	}
	return 0
}

// Faults are the failures the emulator injects, for resilience tests.
// Fractions are probabilities in [0, 1] drawn per request from an RNG
// seeded with Seed, so a sequential test sees the same faults every run.
//
// Error, RateLimit and Corrupt apply to quotation (data) calls only; Reset,
// Outage and Latency to every request except the /_emulator/ admin API.
type Faults struct {
	// Latency is added to every request (on top of WithLatency).
	Latency Latency
	// Error is the fraction of data calls answered HTTP 500 EGW00001
	// "일시적 오류가 발생했습니다." (a transient KIS error).
	Error float64
	// RateLimit is the fraction of data calls answered with the
	// EGW00201 rate-limit error although under the limit.
	RateLimit float64
	// Reset is the fraction of requests whose connection is reset
	// without a response.
	Reset float64
	// Outage, when > 0, resets every request's connection for this long,
	// counted from when the faults are set.
	Outage time.Duration
	// ExpireTokens expires every issued token when the faults are set
	// (one-shot).
	ExpireTokens bool
	// Corrupt is the fraction of successful data responses in which one
	// numeric field is corrupted (high below low, a negative price, or a
	// non-numeric value), for the client's validation layer. The block
	// (output1, output2, ...) and then the row of a list (a chart's
	// output2 bars, a multprice element) are drawn from the fault RNG, so
	// the same seed corrupts the same rows of the same sequence of
	// requests. Which ones were corrupted is listed in [Stats].Corrupted.
	Corrupt float64
	// Seed seeds the fault RNG (0 means 1).
	Seed int64
}

// Fault kinds as counted in [Stats].FaultsInjected.
const (
	FaultLatency      = "latency"
	FaultError        = "error"
	FaultRateLimit    = "rate_limit"
	FaultReset        = "reset"
	FaultOutage       = "outage"
	FaultExpireTokens = "expire_tokens"
	FaultCorrupt      = "corrupt"
)

// ParseFaults parses the --fault syntax: comma-separated items, each
// key=value or a bare flag.
//
//	latency=DIST        added delay, DIST as in ParseLatency (uniform:5ms-50ms)
//	error=F             fraction of data calls answered HTTP 500 EGW00001
//	rate-limit=F        fraction answered EGW00201 (also ratelimit=, 201=)
//	reset=F             fraction of connections reset (RST, no response)
//	outage=D            reset every request for duration D from now
//	expire-tokens       expire every token now (one-shot)
//	corrupt=F           fraction of data responses with one corrupted number
//	seed=N              seed of the fault RNG
//
// F is a fraction 0..1 or a percentage ("5%"). "" and "none" mean no
// faults. A comma inside a latency spec (normal:20ms,5ms) is kept with it.
// Errors name the offending item.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	s := strings.TrimSpace(spec)
	if s == "" || strings.EqualFold(s, "none") {
		return f, nil
	}
	// Split on commas, gluing back pieces that continue the previous
	// value (the stddev of a normal latency).
	var items []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if len(items) > 0 && !strings.Contains(p, "=") && !isBareFault(p) && p != "" {
			items[len(items)-1] += "," + p
			continue
		}
		items = append(items, p)
	}
	for _, it := range items {
		if it == "" {
			continue
		}
		k, v, hasV := strings.Cut(it, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		switch k {
		case "latency", "delay":
			l, err := ParseLatency(v)
			if err != nil {
				return Faults{}, fmt.Errorf("fault %q: %w", it, err)
			}
			f.Latency = l
		case "error", "errors", "500", "http500":
			p, err := parseFraction(it, v)
			if err != nil {
				return Faults{}, err
			}
			f.Error = p
		case "rate-limit", "ratelimit", "rate_limit", "201", "egw00201":
			p, err := parseFraction(it, v)
			if err != nil {
				return Faults{}, err
			}
			f.RateLimit = p
		case "reset", "resets", "rst":
			p, err := parseFraction(it, v)
			if err != nil {
				return Faults{}, err
			}
			f.Reset = p
		case "corrupt", "corruption":
			p, err := parseFraction(it, v)
			if err != nil {
				return Faults{}, err
			}
			f.Corrupt = p
		case "outage":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return Faults{}, fmt.Errorf("fault %q: want a duration like outage=30s", it)
			}
			f.Outage = d
		case "expire-tokens", "expire_tokens", "expiretokens":
			if !hasV {
				f.ExpireTokens = true
				break
			}
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Faults{}, fmt.Errorf("fault %q: want expire-tokens or expire-tokens=true", it)
			}
			f.ExpireTokens = b
		case "seed":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Faults{}, fmt.Errorf("fault %q: want an integer seed", it)
			}
			f.Seed = n
		default:
			return Faults{}, fmt.Errorf("fault %q: unknown fault %q: want latency, error, rate-limit, reset, outage, expire-tokens, corrupt or seed", it, k)
		}
	}
	return f, nil
}

func isBareFault(p string) bool {
	switch strings.ToLower(p) {
	case "expire-tokens", "expire_tokens", "expiretokens":
		return true
	}
	return false
}

func parseFraction(item, v string) (float64, error) {
	s := strings.TrimSpace(v)
	scale := 1.0
	if t, ok := strings.CutSuffix(s, "%"); ok {
		s, scale = t, 100
	}
	p, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(p) {
		return 0, fmt.Errorf("fault %q: want a fraction 0..1 or a percentage like 5%%", item)
	}
	p /= scale
	if p < 0 || p > 1 {
		return 0, fmt.Errorf("fault %q: fraction %v is outside 0..1", item, p)
	}
	return p, nil
}

// String returns the spec ParseFaults accepts.
func (f Faults) String() string {
	var parts []string
	if !f.Latency.IsZero() {
		parts = append(parts, "latency="+f.Latency.String())
	}
	add := func(k string, p float64) {
		if p > 0 {
			parts = append(parts, k+"="+strconv.FormatFloat(p, 'g', -1, 64))
		}
	}
	add("error", f.Error)
	add("rate-limit", f.RateLimit)
	add("reset", f.Reset)
	if f.Outage > 0 {
		parts = append(parts, "outage="+f.Outage.String())
	}
	if f.ExpireTokens {
		parts = append(parts, "expire-tokens")
	}
	add("corrupt", f.Corrupt)
	if f.Seed != 0 {
		parts = append(parts, "seed="+strconv.FormatInt(f.Seed, 10))
	}
	return strings.Join(parts, ",")
}

// faultsJSON is the JSON form of Faults (POST /_emulator/faults).
type faultsJSON struct {
	Latency      string  `json:"latency,omitempty"`
	Error        float64 `json:"error,omitempty"`
	RateLimit    float64 `json:"rate_limit,omitempty"`
	Reset        float64 `json:"reset,omitempty"`
	Outage       string  `json:"outage,omitempty"`
	ExpireTokens bool    `json:"expire_tokens,omitempty"`
	Corrupt      float64 `json:"corrupt,omitempty"`
	Seed         int64   `json:"seed,omitempty"`
	Spec         string  `json:"spec,omitempty"`
}

// MarshalJSON encodes f with durations as strings and the spec alongside.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{Latency: f.Latency.String(), Error: f.Error, RateLimit: f.RateLimit,
		Reset: f.Reset, ExpireTokens: f.ExpireTokens, Corrupt: f.Corrupt, Seed: f.Seed, Spec: f.String()}
	if f.Outage > 0 {
		j.Outage = f.Outage.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON accepts the MarshalJSON form, or {"spec": "..."}.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return fmt.Errorf("faults json: %w", err)
	}
	if j.Spec != "" {
		v, err := ParseFaults(j.Spec)
		if err != nil {
			return err
		}
		*f = v
		return nil
	}
	var v Faults
	var err error
	if v.Latency, err = ParseLatency(j.Latency); err != nil {
		return err
	}
	for _, p := range []struct {
		name string
		v    float64
		dst  *float64
	}{{"error", j.Error, &v.Error}, {"rate_limit", j.RateLimit, &v.RateLimit}, {"reset", j.Reset, &v.Reset}, {"corrupt", j.Corrupt, &v.Corrupt}} {
		if p.v < 0 || p.v > 1 || math.IsNaN(p.v) {
			return fmt.Errorf("faults json: %s %v is outside 0..1", p.name, p.v)
		}
		*p.dst = p.v
	}
	if j.Outage != "" {
		d, err := time.ParseDuration(j.Outage)
		if err != nil || d < 0 {
			return errors.New("faults json: outage: want a duration like 30s")
		}
		v.Outage = d
	}
	v.ExpireTokens, v.Seed = j.ExpireTokens, j.Seed
	*f = v
	return nil
}
