package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/access"
)

// TestStreamRoutes: the stream routes take the key from the Authorization
// header or the kisfeed_key cookie (other routes ignore the cookie),
// hand the handler the key through the context, and run without the
// request timeout; unset, they answer 404.
func TestStreamRoutes(t *testing.T) {
	t.Parallel()
	type seen struct {
		key      string
		deadline bool
	}
	got := make(chan seen, 1)
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := seen{}
		if p := access.FromContext(r.Context()); p != nil {
			s.key = p.Name()
		}
		_, s.deadline = r.Context().Deadline()
		got <- s
		w.WriteHeader(http.StatusNoContent)
	})
	f := authFixture(t, nil, nil, false)
	keyed := New(Options{Source: fakeSource(nil), Access: f.srv.guard, RequestTimeout: time.Second,
		Stream: stream, StreamWS: stream})
	open := New(Options{Source: fakeSource(nil)})
	tests := []struct {
		name    string
		srv     *Server
		path    string
		header  string
		cookie  string
		status  int
		wantKey string
	}{
		{"bearer", keyed, StreamPath, "Bearer " + dataKey, "", http.StatusNoContent, "reader"},
		{"cookie", keyed, StreamPath, "", dataKey, http.StatusNoContent, "reader"},
		{"cookie on ws", keyed, StreamWSPath, "", otherKey, http.StatusNoContent, "other"},
		{"header wins over cookie", keyed, StreamPath, "Bearer " + otherKey, dataKey, http.StatusNoContent, "other"},
		{"no key", keyed, StreamPath, "", "", http.StatusUnauthorized, ""},
		{"unknown cookie", keyed, StreamPath, "", unknownKey, http.StatusUnauthorized, ""},
		{"metrics-only key", keyed, StreamPath, "", metricsKey, http.StatusForbidden, ""},
		{"cookie elsewhere is ignored", keyed, "/v1/status", "", dataKey, http.StatusUnauthorized, ""},
		{"not enabled", open, StreamPath, "", "", http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(context.Background(), http.MethodGet, tt.path, nil)
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			if tt.cookie != "" {
				r.AddCookie(&http.Cookie{Name: KeyCookie, Value: tt.cookie})
			}
			w := httptest.NewRecorder()
			tt.srv.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d (%s)", w.Code, tt.status, w.Body)
			}
			if tt.status != http.StatusNoContent {
				return
			}
			s := <-got
			if s.key != tt.wantKey || s.deadline {
				t.Errorf("handler saw key %q, deadline %v; want %q and no deadline", s.key, s.deadline, tt.wantKey)
			}
		})
	}
}
