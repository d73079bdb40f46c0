package stream

import (
	"path/filepath"
	"testing"

	"github.com/kisfeed/kisfeed/kis"
)

// TestApprovalKeySharedByTwoClients: two clients (two processes) on one
// file store use one issued key between them.
func TestApprovalKeySharedByTwoClients(t *testing.T) {
	f := newFakeKIS(t)
	path := filepath.Join(t.TempDir(), "approval.json")
	for i := range 2 {
		st, err := kis.NewFileApprovalKeyStore(path)
		if err != nil {
			t.Fatal(err)
		}
		c := startClient(t, f, 1, Config{ApprovalStore: st})
		if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
			t.Fatal(err)
		}
		conn := f.nextConn(t)
		sub := conn.awaitSubs(t, 1)[0]
		if sub.Header.ApprovalKey != "app1-approval-1" {
			t.Errorf("client %d sent %q, want the shared app1-approval-1", i+1, sub.Header.ApprovalKey)
		}
		if i == 0 {
			conn.drop() // free the app key for the second client
			<-conn.done
		}
	}
	if n := f.issuedFor("app1"); n != 1 {
		t.Errorf("issued %d approval keys, want 1", n)
	}
}

// TestKeyInUseBacksOffWithoutReissue: OPSP8996 means another session holds
// the app key; the client backs off and keeps its approval key.
func TestKeyInUseBacksOffWithoutReissue(t *testing.T) {
	f := newFakeKIS(t)
	f.busy["app1"] = true
	obs := newObs()
	c := startClient(t, f, 1, Config{}, WithObserver(obs))
	if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if r := recv(t, obs.reconnects, "a reconnect"); r != "key1:"+reasonKeyInUse {
			t.Fatalf("reconnect %d: %q, want key1:key_in_use", i, r)
		}
	}
	f.mu.Lock()
	f.busy["app1"] = false
	f.mu.Unlock()
	conn := f.nextConnWithSubs(t)
	if n := f.issuedFor("app1"); n != 1 {
		t.Errorf("issued %d approval keys, want 1 (OPSP8996 is not a key problem)", n)
	}
	if conn.registrations() != 1 {
		t.Errorf("server holds %d registrations, want 1", conn.registrations())
	}
}

// nextConnWithSubs returns the first later session that got a
// registration acknowledged.
func (f *fakeKIS) nextConnWithSubs(t *testing.T) *fakeConn {
	t.Helper()
	for {
		conn := f.nextConn(t)
		recv(t, conn.msgs, "a subscribe")
		if conn.registrations() > 0 {
			return conn
		}
	}
}

// TestApprovalRefusedReissuesOnce: OPSP0011 gets one new key; a second
// refusal of the fresh key backs off without a third issuance until a
// session succeeds.
func TestApprovalRefusedReissuesOnce(t *testing.T) {
	f := newFakeKIS(t)
	f.refuse = 2
	obs := newObs()
	c := startClient(t, f, 1, Config{}, WithObserver(obs))
	if err := c.Subscribe(t.Context(), "005930", KindTrade); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if r := recv(t, obs.reconnects, "a reconnect"); r != "key1:"+reasonApprovalRefused {
			t.Fatalf("reconnect %d: %q", i, r)
		}
	}
	// The fake forgot both refused keys; within a minute the client does
	// not re-issue again, so the third session is refused as well.
	if r := recv(t, obs.reconnects, "a reconnect"); r != "key1:"+reasonApprovalRefused {
		t.Fatalf("third: %q", r)
	}
	if n := f.issuedFor("app1"); n != 2 {
		t.Errorf("issued %d, want 2 (one re-issue)", n)
	}
}
