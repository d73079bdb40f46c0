package access

import (
	"crypto/sha256"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

var def = Quota{MissRate: 5, MissBurst: 30}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	h1, h2 := Hash("kf_one"), Hash("kf_two")
	tests := []struct {
		name string
		list string
		want []Key // compared on name, scopes and quota
	}{
		{"empty", "", nil},
		{"blanks and spaces", " , ", nil},
		{"one with defaults", "alice:" + h1, []Key{{Name: "alice", Scopes: []Scope{ScopeData}, Quota: def}}},
		{"overrides", "alice:" + h1 + ":rate=0.5:burst=3:scopes=metrics+data,bob:" + strings.ToUpper(h2) + ":rate=0",
			[]Key{
				{Name: "alice", Scopes: []Scope{ScopeMetrics, ScopeData}, Quota: Quota{MissRate: 0.5, MissBurst: 3}},
				{Name: "bob", Scopes: []Scope{ScopeData}, Quota: Quota{MissRate: 0, MissBurst: 30}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseKeys(tt.list, def)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d keys, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Name != w.Name || strings.Join(scopeStrings(g.Scopes), "+") != strings.Join(scopeStrings(w.Scopes), "+") || g.Quota != w.Quota {
					t.Errorf("key %d = %s %v %+v, want %s %v %+v", i, g.Name, g.Scopes, g.Quota, w.Name, w.Scopes, w.Quota)
				}
			}
			if len(got) > 0 && Hash("kf_one") != hexOf(got[0].Hash) {
				t.Errorf("hash of the first key not kept")
			}
		})
	}
}

func scopeStrings(ss []Scope) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

func hexOf(h [32]byte) string {
	const digits = "0123456789abcdef"
	var b strings.Builder
	for _, c := range h {
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&15])
	}
	return b.String()
}

// TestParseKeysErrors: each malformed list is refused with an error that
// names the entry and the field, and never echoes the hash field.
func TestParseKeysErrors(t *testing.T) {
	t.Parallel()
	h1, h2 := Hash("kf_one"), Hash("kf_two")
	const pasted = "kf_THIS-IS-A-PLAINTEXT-KEY-PASTED-AS-HASH"
	tests := []struct {
		name  string
		list  string
		entry int
		field string
		msg   string
	}{
		{"plaintext key as hash", "alice:" + pasted, 1, "hash", "64 hex digits"},
		{"short hash", "alice:" + h1[:62], 1, "hash", "64 hex digits"},
		{"no hash", "alice", 1, "hash", "missing"},
		{"empty name", ":" + h1, 1, "name", "letters"},
		{"name with a space", "al ice:" + h1, 1, "name", "letters"},
		{"duplicate name", "alice:" + h1 + ",bob:" + h2 + ",alice:" + Hash("kf_three"), 3, "name", "already used by entry 1"},
		{"duplicate key", "alice:" + h1 + ",bob:" + h1, 2, "hash", "same key as entry 1 (alice)"},
		{"negative rate", "alice:" + h1 + ":rate=-1", 1, "rate", ">= 0"},
		{"rate not a number", "alice:" + h1 + ":rate=fast", 1, "rate", ">= 0"},
		{"zero burst", "alice:" + h1 + ":burst=0", 1, "burst", ">= 1"},
		{"unknown scope", "alice:" + h1 + ":scopes=data+admin", 1, "scopes", "admin"},
		{"unknown option", "alice:" + h1 + ":ttl=5", 1, "entry", "ttl"},
		{"repeated option", "alice:" + h1 + ":rate=1:rate=2", 1, "entry", "at most once"},
		{"second entry bad", "alice:" + h1 + ",bob:xyz", 2, "hash", "64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseKeys(tt.list, def)
			var ee *EntryError
			if !errors.As(err, &ee) {
				t.Fatalf("error %v, want an *EntryError", err)
			}
			if ee.Entry != tt.entry || ee.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q (entry %d, field %s), want entry %d, field %s, mentioning %q", err, ee.Entry, ee.Field, tt.entry, tt.field, tt.msg)
			}
			for _, secret := range []string{pasted, h1, h2} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q echoes the hash field", err)
				}
			}
		})
	}
}

func TestNewKeyAndEntry(t *testing.T) {
	t.Parallel()
	k1, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k2, _ := NewKey()
	if k1 == k2 || !strings.HasPrefix(k1, "kf_") || len(k1) != 3+43 {
		t.Errorf("keys %q, %q: want two different kf_ + 43 base64url characters", k1, k2)
	}
	for _, tt := range []struct {
		scopes []Scope
		want   []Scope
	}{{nil, []Scope{ScopeData}}, {[]Scope{ScopeData, ScopeMetrics}, []Scope{ScopeData, ScopeMetrics}}} {
		e := Entry("svc", k1, tt.scopes)
		if strings.Contains(e, k1) {
			t.Fatalf("entry %q holds the key itself", e)
		}
		keys, err := ParseKeys(e, def)
		if err != nil {
			t.Fatalf("entry %q does not parse: %v", e, err)
		}
		if p := New(keys).Authenticate(k1); p == nil || p.Name() != "svc" || !p.Has(tt.want[len(tt.want)-1]) {
			t.Errorf("entry %q: key does not authenticate with scopes %v", e, tt.want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	t.Parallel()
	keys, err := ParseKeys("a:"+Hash("kf_a")+",b:"+Hash("kf_b"), def)
	if err != nil {
		t.Fatal(err)
	}
	g := New(keys)
	for token, want := range map[string]string{"kf_a": "a", "kf_b": "b", "kf_c": "", "": "", "kf_a ": "", Hash("kf_a"): ""} {
		got := ""
		if p := g.Authenticate(token); p != nil {
			got = p.Name()
		}
		if got != want {
			t.Errorf("Authenticate(%q) = %q, want %q", token, got, want)
		}
	}
	if New(nil) != nil {
		t.Error("New(nil) should be nil: no access control")
	}
	var none *Guard
	if none.Authenticate("kf_a") != nil {
		t.Error("a nil Guard authenticated a key")
	}
}

// TestMissBucket drives one key's bucket on made-up times: no sleeping.
func TestMissBucket(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)
	p := newPrincipal(Key{Name: "k", Quota: Quota{MissRate: 2, MissBurst: 3}})
	steps := []struct {
		at     time.Duration
		charge int
		wait   time.Duration // MissWait after the charge
	}{
		{0, 0, 0},
		{0, 2, 0},                      // 1 left
		{0, 1, 500 * time.Millisecond}, // empty: half a second to one token at 2/s
		{250 * time.Millisecond, 0, 250 * time.Millisecond},
		// Debt: 0.5 - 3 = -2.5 tokens, 3.5 short of one: 1.75 s at 2/s.
		{250 * time.Millisecond, 3, 1750 * time.Millisecond},
		{2 * time.Second, 0, 0},
	}
	for i, s := range steps {
		now := t0.Add(s.at)
		p.ChargeMiss(now, s.charge)
		if got := p.MissWait(now); got != s.wait {
			t.Errorf("step %d at +%s after charging %d: wait %s, want %s", i, s.at, s.charge, got, s.wait)
		}
	}
	free := newPrincipal(Key{Name: "free", Quota: Quota{MissRate: 0, MissBurst: 1}})
	free.ChargeMiss(t0, 1000)
	if w := free.MissWait(t0); w != 0 {
		t.Errorf("rate 0 (no limit): wait %s, want 0", w)
	}
}

func TestStreamQuotaHook(t *testing.T) {
	t.Parallel()
	var q StreamQuota = newPrincipal(Key{Name: "k", Quota: Quota{StreamCodes: 3}})
	steps := []struct {
		acquire, release int
		ok               bool
	}{
		{acquire: 2, ok: true},
		{acquire: 2, ok: false}, // 4 > 3: refused, nothing counted
		{acquire: 1, ok: true},  // exactly 3
		{release: 2},
		{acquire: 2, ok: true},
		{acquire: 1, ok: false},
	}
	for i, s := range steps {
		if s.release > 0 {
			q.ReleaseCodes(s.release)
			continue
		}
		err := q.AcquireCodes(s.acquire)
		var qe *QuotaError
		if s.ok != (err == nil) || (err != nil && (!errors.As(err, &qe) || qe.Key != "k" || qe.Quota != "streamed codes")) {
			t.Errorf("step %d: AcquireCodes(%d) = %v, want ok %v (else a *QuotaError naming the key)", i, s.acquire, err, s.ok)
		}
	}
	free := newPrincipal(Key{Name: "free"})
	if err := free.AcquireCodes(1000); err != nil {
		t.Errorf("no limit: AcquireCodes(1000) = %v", err)
	}
}

// BenchmarkAuthenticate is the per-request cost of finding a key among
// n: one SHA-256 of the token and n constant-time compares.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(strconv.Itoa(n)+"keys", func(b *testing.B) {
			var keys []Key
			for i := range n {
				keys = append(keys, Key{Name: "k" + strconv.Itoa(i), Hash: sha256.Sum256([]byte("kf_key-" + strconv.Itoa(i)))})
			}
			g := New(keys)
			token := "kf_key-" + strconv.Itoa(n-1)
			b.ReportAllocs()
			for b.Loop() {
				if g.Authenticate(token) == nil {
					b.Fatal("no match")
				}
			}
		})
	}
}
