// Package access decides who may use serve's API: consumer API keys, kept
// only as SHA-256 hashes, the scopes each key holds, and per-key quotas on
// what spends the upstream's budget (cache misses now, streamed codes
// later). It knows nothing of HTTP routes; internal/httpapi maps routes to
// scopes and quotas to problem responses.
package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Scope is a permission a key holds.
type Scope string

// The scopes. A key holds ScopeData unless its entry says otherwise.
const (
	// ScopeData reads market data: every /v1 route.
	ScopeData Scope = "data"
	// ScopeMetrics reads /metrics when the server requires a key there.
	ScopeMetrics Scope = "metrics"
)

var knownScopes = []Scope{ScopeData, ScopeMetrics}

// Quota is what a key may spend of the upstream's budget.
type Quota struct {
	// MissRate is the cache misses per second the key's bucket refills
	// with; 0 = no limit.
	MissRate float64
	// MissBurst is the bucket's size: the misses a key may make at once
	// after being idle.
	MissBurst int
	// StreamCodes is the most codes the key's consumers may stream at
	// once ([StreamQuota]); 0 = no limit. No setting feeds it yet: the
	// real-time fan-out that enforces it is not built.
	StreamCodes int
}

// Key is one configured consumer key: a name for logs and problems, the
// SHA-256 of the key itself, its scopes and its quota.
type Key struct {
	Name   string
	Hash   [sha256.Size]byte
	Scopes []Scope
	Quota  Quota
}

// Has reports whether k holds scope s.
func (k Key) Has(s Scope) bool { return slices.Contains(k.Scopes, s) }

// EntryError is a malformed entry of the key list. It never quotes the
// hash field's value: a plaintext key pasted there by mistake would be
// printed in the error.
type EntryError struct {
	Entry int    // 1-based position in the list
	Name  string // the entry's name, "" when it has none
	Field string // "name", "hash", "rate", "burst", "scopes" or "entry"
	Msg   string
}

func (e *EntryError) Error() string {
	if e.Name != "" {
		return fmt.Sprintf("entry %d (%s): %s: %s", e.Entry, e.Name, e.Field, e.Msg)
	}
	return fmt.Sprintf("entry %d: %s: %s", e.Entry, e.Field, e.Msg)
}

// validName is what a key's name may be: it shows in logs and problems.
var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidName reports whether name can name a key.
func ValidName(name string) bool { return validName.MatchString(name) }

// ParseKeys reads a key list: comma-separated entries
//
//	name:sha256hex[:rate=R][:burst=B][:scopes=data+metrics]
//
// where sha256hex is the SHA-256 of the key in hex (see [Hash]), R the
// entry's own cache misses per second (0 = no limit) and B its burst;
// missing options take def, and scopes default to data. Scopes are joined
// with '+' because ',' separates entries. Names and hashes must be unique.
// The error is an *[EntryError] naming the entry and field.
func ParseKeys(list string, def Quota) ([]Key, error) {
	var keys []Key
	for i, raw := range strings.Split(list, ",") {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		k, err := parseEntry(i+1, raw, def)
		if err != nil {
			return nil, err
		}
		for j, o := range keys {
			if o.Name == k.Name {
				return nil, &EntryError{i + 1, k.Name, "name", fmt.Sprintf("already used by entry %d", j+1)}
			}
			if o.Hash == k.Hash {
				return nil, &EntryError{i + 1, k.Name, "hash", fmt.Sprintf("same key as entry %d (%s)", j+1, o.Name)}
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}

func parseEntry(n int, raw string, def Quota) (Key, error) {
	fields := strings.Split(raw, ":")
	k := Key{Name: strings.TrimSpace(fields[0]), Scopes: []Scope{ScopeData}, Quota: def}
	if !ValidName(k.Name) {
		// The name field may hold a pasted key; show it only if it is
		// short and harmless.
		return Key{}, &EntryError{n, "", "name", "want letters, digits, '.', '_' or '-' (1 to 64), then :sha256hex"}
	}
	if len(fields) < 2 {
		return Key{}, &EntryError{n, k.Name, "hash", "missing: want name:sha256hex (kisfeed apikey new NAME prints an entry)"}
	}
	h, err := hex.DecodeString(strings.TrimSpace(fields[1]))
	if err != nil || len(h) != sha256.Size {
		return Key{}, &EntryError{n, k.Name, "hash", "want 64 hex digits, the SHA-256 of the key (never the key itself)"}
	}
	copy(k.Hash[:], h)
	seen := map[string]bool{}
	for _, opt := range fields[2:] {
		name, val, ok := strings.Cut(strings.TrimSpace(opt), "=")
		if !ok || seen[name] {
			return Key{}, &EntryError{n, k.Name, "entry", fmt.Sprintf("option %q: want rate=R, burst=B or scopes=S, each at most once", truncate(name))}
		}
		seen[name] = true
		switch name {
		case "rate":
			r, err := strconv.ParseFloat(val, 64)
			if err != nil || r < 0 || r != r {
				return Key{}, &EntryError{n, k.Name, "rate", fmt.Sprintf("%q: want cache misses per second >= 0 (0 = no limit)", truncate(val))}
			}
			k.Quota.MissRate = r
		case "burst":
			b, err := strconv.Atoi(val)
			if err != nil || b < 1 {
				return Key{}, &EntryError{n, k.Name, "burst", fmt.Sprintf("%q: want a whole number >= 1", truncate(val))}
			}
			k.Quota.MissBurst = b
		case "scopes":
			k.Scopes = nil
			for _, s := range strings.Split(val, "+") {
				if !slices.Contains(knownScopes, Scope(s)) {
					return Key{}, &EntryError{n, k.Name, "scopes", fmt.Sprintf("%q: want data and/or metrics joined by '+'", truncate(s))}
				}
				if !k.Has(Scope(s)) {
					k.Scopes = append(k.Scopes, Scope(s))
				}
			}
		default:
			return Key{}, &EntryError{n, k.Name, "entry", fmt.Sprintf("option %q: want rate, burst or scopes", truncate(name))}
		}
	}
	return k, nil
}

// truncate caps a quoted value in an error.
func truncate(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}

// keyPrefix marks kisfeed keys, so a leaked one is recognisable (secret
// scanners match on prefixes).
const keyPrefix = "kf_"

// NewKey returns a fresh random key: "kf_" and 32 random bytes in
// unpadded base64url (256 bits: no guessing, and the hash needs no salt
// or slow KDF, since a key is never a human-chosen password).
func NewKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random key: %w", err)
	}
	return keyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Hash returns the SHA-256 of key in hex, as an entry of the key list
// holds it.
func Hash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])
}

// Entry returns the key-list entry for name and key, with scopes when they
// differ from the default (data only).
func Entry(name, key string, scopes []Scope) string {
	e := name + ":" + Hash(key)
	if len(scopes) > 0 && !slices.Equal(scopes, []Scope{ScopeData}) {
		ss := make([]string, len(scopes))
		for i, s := range scopes {
			ss[i] = string(s)
		}
		e += ":scopes=" + strings.Join(ss, "+")
	}
	return e
}
