package config

import (
	"strings"
	"testing"
	"time"
)

// TestReplicaSettings: NATS_URL needs REDIS_URL, KISFEED_REPLICA must be a
// subject token, STREAM_LEASE_TTL is bounded; errors name the field.
func TestReplicaSettings(t *testing.T) {
	redis := "REDIS_URL=redis://127.0.0.1:6379/0"
	tests := []struct {
		name      string
		env       []string
		wantErr   string // the field the error names; "" = valid
		wantTTL   time.Duration
		wantNamed string
	}{
		{"single process", nil, "", 6 * time.Second, ""},
		{"replicated", []string{"NATS_URL=nats://127.0.0.1:4222", redis, "KISFEED_REPLICA=r1", "STREAM_LEASE_TTL=3s"}, "", 3 * time.Second, "r1"},
		{"cluster list", []string{"NATS_URL=nats://a:4222,nats://b:4222", redis}, "", 6 * time.Second, ""},
		{"NATS without Redis", []string{"NATS_URL=nats://127.0.0.1:4222"}, "REDIS_URL", 0, ""},
		{"bad NATS URL", []string{"NATS_URL=http://127.0.0.1:4222", redis}, "NATS_URL", 0, ""},
		{"replica with a dot", []string{"KISFEED_REPLICA=a.b"}, "KISFEED_REPLICA", 0, ""},
		{"replica with a colon", []string{"KISFEED_REPLICA=a:1"}, "KISFEED_REPLICA", 0, ""},
		{"ttl too short", []string{"STREAM_LEASE_TTL=100ms"}, "STREAM_LEASE_TTL", 0, ""},
		{"ttl too long", []string{"STREAM_LEASE_TTL=2m"}, "STREAM_LEASE_TTL", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.env, "")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Load(%v) error = %v, want one naming %s", tt.env, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.StreamLeaseTTL != tt.wantTTL {
				t.Errorf("STREAM_LEASE_TTL = %s, want %s", c.StreamLeaseTTL, tt.wantTTL)
			}
			name := c.ReplicaName()
			if tt.wantNamed != "" && name != tt.wantNamed {
				t.Errorf("ReplicaName() = %q, want %q", name, tt.wantNamed)
			}
			if !validReplica(name) {
				t.Errorf("ReplicaName() = %q is not a valid replica name", name)
			}
		})
	}
}
