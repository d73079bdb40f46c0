package access

import "context"

// principalKey is the context key of the request's [Principal].
type principalKey struct{}

// NewContext returns ctx carrying p, the key a request authenticated
// with: internal/httpapi puts it there after authorizing a request, so
// handlers mounted under it (the stream's fan-out) can charge the key's
// quotas without knowing how it was checked.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the Principal NewContext put in ctx, or nil (no
// access control, or a public route).
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
