package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
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
	mu    sync.Mutex
	keys  map[string]ApprovalKey   // guarded by mu
	locks map[string]chan struct{} // guarded by mu
}

// NewMemoryApprovalKeyStore returns an empty in-memory store.
func NewMemoryApprovalKeyStore() *MemoryApprovalKeyStore {
	return &MemoryApprovalKeyStore{keys: map[string]ApprovalKey{}, locks: map[string]chan struct{}{}}
}

// Load implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Load(_ context.Context, id string) (*ApprovalKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, nil
	}
	return &k, nil
}

// Save implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Save(_ context.Context, id string, k *ApprovalKey) error {
	if k == nil {
		return errors.New("save approval key: nil key")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[id] = *k
	return nil
}

// Lock implements [ApprovalKeyStore].
func (s *MemoryApprovalKeyStore) Lock(ctx context.Context, id string) (func(), error) {
	s.mu.Lock()
	ch, ok := s.locks[id]
	if !ok {
		ch = make(chan struct{}, 1)
		s.locks[id] = ch
	}
	s.mu.Unlock()
	if err := acquire(ctx, ch); err != nil {
		return nil, err
	}
	return func() { release(ch) }, nil
}

// FileApprovalKeyStore keeps approval keys in one JSON file (mode 0600),
// keyed by id (server and hashed app key), written atomically; Lock
// serialises issuance within the process and, through an advisory lock on
// path + ".lock", across processes, as [FileTokenStore] does for tokens.
type FileApprovalKeyStore struct {
	path string
	mu   chan struct{} // in-process lock, held across Lock..unlock
	rw   chan struct{} // guards read-modify-write of the file
}

// NewFileApprovalKeyStore returns a store at path, creating its directory
// (0700) if needed.
func NewFileApprovalKeyStore(path string) (*FileApprovalKeyStore, error) {
	if path == "" {
		return nil, errors.New("approval key file: want a path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("approval key file: %w", err)
	}
	return &FileApprovalKeyStore{path: path, mu: make(chan struct{}, 1), rw: make(chan struct{}, 1)}, nil
}

// Path returns the file the store writes.
func (s *FileApprovalKeyStore) Path() string { return s.path }

func (s *FileApprovalKeyStore) read() (map[string]ApprovalKey, error) {
	m := map[string]ApprovalKey{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(b) == 0) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read approval key file: %w", err)
	}
	if json.Unmarshal(b, &m) != nil {
		// A corrupt file costs one issuance, not an outage.
		return map[string]ApprovalKey{}, nil
	}
	return m, nil
}

// Load implements [ApprovalKeyStore].
func (s *FileApprovalKeyStore) Load(ctx context.Context, id string) (*ApprovalKey, error) {
	if err := acquire(ctx, s.rw); err != nil {
		return nil, err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	k, ok := m[id]
	if !ok {
		return nil, nil
	}
	return &k, nil
}

// Save implements [ApprovalKeyStore].
func (s *FileApprovalKeyStore) Save(ctx context.Context, id string, k *ApprovalKey) error {
	if k == nil {
		return errors.New("save approval key: nil key")
	}
	if err := acquire(ctx, s.rw); err != nil {
		return err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return err
	}
	m[id] = *k
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("save approval key: %w", err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("save approval key: %w", err)
	}
	return nil
}

// writeFileAtomic writes b to path through a 0600 temp file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kis-keys-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// Lock implements [ApprovalKeyStore]: the in-process lock, then an
// advisory lock on the lock file, polled so ctx can cancel the wait.
func (s *FileApprovalKeyStore) Lock(ctx context.Context, _ string) (func(), error) {
	if err := acquire(ctx, s.mu); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		release(s.mu)
		return nil, fmt.Errorf("approval key lock: %w", err)
	}
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			release(s.mu)
			return nil, fmt.Errorf("approval key lock: %w", err)
		}
		if ok {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			f.Close()
			release(s.mu)
			return nil, err
		}
	}
	return func() {
		unlockFile(f)
		f.Close()
		release(s.mu)
	}, nil
}
