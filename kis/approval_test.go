package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisfeed/kisfeed/internal/clocktest"
)

// approvalServer answers POST /oauth2/Approval with a new key each time,
// and records the body fields it saw.
func approvalServer(t *testing.T) (*httptest.Server, *atomic.Int64, chan map[string]string) {
	t.Helper()
	var n atomic.Int64
	bodies := make(chan map[string]string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/oauth2/Approval" {
			http.NotFound(w, r)
			return
		}
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		bodies <- body
		if body["secretkey"] == "" {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"error_code":"EGW00105","error_description":"유효하지 않은 AppSecret입니다."}`)
			return
		}
		fmt.Fprintf(w, `{"approval_key":"key-%d"}`, n.Add(1))
	}))
	t.Cleanup(srv.Close)
	return srv, &n, bodies
}

func TestApproverIssuesOnceAndReuses(t *testing.T) {
	srv, n, bodies := approvalServer(t)
	clk := clocktest.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	a, err := NewApprover(ApproverConfig{BaseURL: srv.URL, AppKey: "app", AppSecret: "sec", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if k, err := a.Key(t.Context()); err != nil || k != "key-1" {
				t.Errorf("key %q err %v", k, err)
			}
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Fatalf("issued %d, want 1", n.Load())
	}
	body := <-bodies
	if body["grant_type"] != "client_credentials" || body["appkey"] != "app" || body["secretkey"] != "sec" || body["appsecret"] != "" {
		t.Errorf("body %v: want grant_type, appkey and secretkey (not appsecret)", body)
	}
	// Valid until 24 h minus the margin; then re-issued.
	clk.Advance(ApprovalKeyValidity - DefaultApprovalMargin - time.Minute)
	if k, _ := a.Key(t.Context()); k != "key-1" {
		t.Errorf("within validity: %q", k)
	}
	clk.Advance(2 * time.Minute)
	if k, _ := a.Key(t.Context()); k != "key-2" {
		t.Errorf("past the margin: %q, want key-2", k)
	}
}

func TestApproverRenewSkipsStaleKey(t *testing.T) {
	srv, n, _ := approvalServer(t)
	clk := clocktest.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	a, _ := NewApprover(ApproverConfig{BaseURL: srv.URL, AppKey: "app", AppSecret: "sec", Now: clk.Now})
	var slept []time.Duration
	a.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); clk.Advance(d); return nil }
	k1, _ := a.Key(t.Context())
	k2, err := a.Renew(t.Context(), k1)
	if err != nil || k2 == k1 || n.Load() != 2 {
		t.Fatalf("renew: %q err %v issued %d", k2, err, n.Load())
	}
	if len(slept) != 1 || slept[0] != ApprovalIssueInterval {
		t.Errorf("paced %v, want one wait of %s (1 issuance per second)", slept, ApprovalIssueInterval)
	}
	// Renewing an already replaced key reuses the replacement.
	if k3, _ := a.Renew(t.Context(), k1); k3 != k2 || n.Load() != 2 {
		t.Errorf("second renew of the same stale key: %q, issued %d", k3, n.Load())
	}
}

// TestApprovalFileStoreShared: two approvers (two processes) on one file
// issue once between them; the file never holds the secret.
func TestApprovalFileStoreShared(t *testing.T) {
	srv, n, _ := approvalServer(t)
	path := filepath.Join(t.TempDir(), "keys.json")
	var keys []string
	for range 2 {
		st, err := NewFileApprovalKeyStore(path)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := NewApprover(ApproverConfig{BaseURL: srv.URL, AppKey: "app", AppSecret: "topsecret", Store: st})
		k, err := a.Key(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if n.Load() != 1 || keys[0] != keys[1] {
		t.Errorf("issued %d, keys %v: want one key shared", n.Load(), keys)
	}
	st, _ := NewFileApprovalKeyStore(path)
	b, _ := os.ReadFile(st.Path())
	if strings.Contains(string(b), "topsecret") || strings.Contains(string(b), "\"app\"") {
		t.Errorf("store file holds the secret or the raw app key: %s", b)
	}
}

func TestApproverErrors(t *testing.T) {
	srv, _, _ := approvalServer(t)
	if _, err := NewApprover(ApproverConfig{AppKey: "app"}); err == nil {
		t.Error("no secret accepted")
	}
	if _, err := NewApprover(ApproverConfig{AppKey: "a", AppSecret: "s", BaseURL: "ftp://x"}); err == nil {
		t.Error("bad base url accepted")
	}
	a, _ := NewApprover(ApproverConfig{BaseURL: srv.URL + "/nowhere", AppKey: "app", AppSecret: "s3cr3t-value"})
	_, err := a.Key(t.Context())
	var api *APIError
	if !errors.As(err, &api) || api.HTTPStatus != http.StatusNotFound {
		t.Errorf("err = %v, want an APIError with HTTP 404", err)
	}
	if err != nil && strings.Contains(err.Error(), "s3cr3t-value") {
		t.Errorf("error shows the secret: %v", err)
	}
	k := ApprovalKey{Value: "very-secret-key", Expires: time.Now()}
	for _, s := range []string{k.String(), fmt.Sprintf("%#v", k), fmt.Sprintf("%v", k)} {
		if strings.Contains(s, "very-secret-key") {
			t.Errorf("key printed: %s", s)
		}
	}
}
