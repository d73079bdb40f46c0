package kis

import (
	"context"
	"errors"
)

// ApprovalKeyStore persists WebSocket approval keys so that restarts and
// sibling processes reuse a valid key instead of issuing another: the
// same three calls as [TokenStore] on [ApprovalKey] records, so the
// wiring can back it with internal/shared's generic Redis store
// (shared.TokenStore[kis.ApprovalKey], retained until
// [ApprovalKey.RetainUntil]).
type ApprovalKeyStore interface {
	// Load returns the stored key for id, or nil, nil when there is none.
	Load(ctx context.Context, id string) (*ApprovalKey, error)
	// Save stores k under id, replacing any previous key.
	Save(ctx context.Context, id string, k *ApprovalKey) error
	// Lock serialises issuance for id across every sharer of the store;
	// the caller must call unlock.
	Lock(ctx context.Context, id string) (unlock func(), err error)
}

// MemoryApprovalKeyStore keeps approval keys in process memory: the clients
// of one process share them, a restart issues again.
type MemoryApprovalKeyStore struct {
	r *memoryRecords[ApprovalKey]
}

// NewMemoryApprovalKeyStore returns an empty in-memory store.
func NewMemoryApprovalKeyStore() *MemoryApprovalKeyStore {
	return &MemoryApprovalKeyStore{r: newMemoryRecords[ApprovalKey]()}
}

// Load implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Load(_ context.Context, id string) (*ApprovalKey, error) {
	return s.r.load(id), nil
}

// Save implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Save(_ context.Context, id string, k *ApprovalKey) error {
	if k == nil {
		return errors.New("save approval key: nil key")
	}
	s.r.save(id, *k)
	return nil
}

// Lock implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Lock(ctx context.Context, id string) (func(), error) {
	return s.r.lock(ctx, id)
}

// FileApprovalKeyStore keeps approval keys in one JSON file (mode 0600),
// keyed by id (server and hashed app key), written atomically; Lock
// serialises issuance within the process and, through an advisory lock on
// path + ".lock", across processes, as [FileTokenStore] does for tokens.
type FileApprovalKeyStore struct {
	f *fileRecords[ApprovalKey]
}

// NewFileApprovalKeyStore returns a store at path, creating its directory
// (0700) if needed.
func NewFileApprovalKeyStore(path string) (*FileApprovalKeyStore, error) {
	f, err := newFileRecords[ApprovalKey](path, "approval key")
	if err != nil {
		return nil, err
	}
	return &FileApprovalKeyStore{f: f}, nil
}

// Path returns the file the store writes.
func (s *FileApprovalKeyStore) Path() string { return s.f.path }

// Load implements [ApprovalKeyStore].
func (s *FileApprovalKeyStore) Load(ctx context.Context, id string) (*ApprovalKey, error) {
	return s.f.load(ctx, id)
}

// Save implements [ApprovalKeyStore].
func (s *FileApprovalKeyStore) Save(ctx context.Context, id string, k *ApprovalKey) error {
	if k == nil {
		return errors.New("save approval key: nil key")
	}
	return s.f.save(ctx, id, *k)
}

// Lock implements [ApprovalKeyStore]: the in-process lock, then an
// advisory lock on the lock file, polled so ctx can cancel the wait.
func (s *FileApprovalKeyStore) Lock(ctx context.Context, _ string) (func(), error) {
	return s.f.lock(ctx)
}
