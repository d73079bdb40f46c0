package kis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// FileTokenStore keeps tokens in one JSON file (mode 0600), keyed by id
// (server and hashed app key), written atomically (temp file + rename).
// Lock serialises issuance within the process (a channel mutex) and
// across processes (an advisory lock on path + ".lock").
type FileTokenStore struct {
	path string
	mu   chan struct{} // in-process lock, held across Lock..unlock
	rw   chan struct{} // guards read-modify-write of the file
}

// fileToken is the on-disk form of a Token.
type fileToken struct {
	Value    string    `json:"value"`
	Type     string    `json:"type"`
	Expires  time.Time `json:"expires"`
	IssuedAt time.Time `json:"issued_at"`
}

// NewFileTokenStore returns a store at path, creating its directory
// (0700) if needed.
func NewFileTokenStore(path string) (*FileTokenStore, error) {
	if path == "" {
		return nil, errors.New("token file: want a path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	return &FileTokenStore{path: path, mu: make(chan struct{}, 1), rw: make(chan struct{}, 1)}, nil
}

// Path returns the file the store writes.
func (s *FileTokenStore) Path() string { return s.path }

func (s *FileTokenStore) read() (map[string]fileToken, error) {
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]fileToken{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read token file: %w", err)
	}
	m := map[string]fileToken{}
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		// A corrupt file costs one issuance, not an outage.
		return map[string]fileToken{}, nil
	}
	return m, nil
}

// Load implements [TokenStore].
func (s *FileTokenStore) Load(ctx context.Context, id string) (*Token, error) {
	if err := acquire(ctx, s.rw); err != nil {
		return nil, err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	ft, ok := m[id]
	if !ok {
		return nil, nil
	}
	return &Token{Value: ft.Value, Type: ft.Type, Expires: ft.Expires, IssuedAt: ft.IssuedAt}, nil
}

// Save implements [TokenStore].
func (s *FileTokenStore) Save(ctx context.Context, id string, t *Token) error {
	if t == nil {
		return errors.New("save token: nil token")
	}
	if err := acquire(ctx, s.rw); err != nil {
		return err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return err
	}
	m[id] = fileToken{Value: t.Value, Type: t.Type, Expires: t.Expires, IssuedAt: t.IssuedAt}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(s.path), ".kis-tokens-*")
	if err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save token: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save token: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save token: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	if err := os.Rename(tmp.Name(), s.path); err != nil {
		return fmt.Errorf("save token: %w", err)
	}
	return nil
}

// Lock implements [TokenStore]: the in-process lock, then an advisory
// lock on the lock file, polled so ctx can cancel the wait.
func (s *FileTokenStore) Lock(ctx context.Context, id string) (func(), error) {
	if err := acquire(ctx, s.mu); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		release(s.mu)
		return nil, fmt.Errorf("token lock: %w", err)
	}
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			release(s.mu)
			return nil, fmt.Errorf("token lock: %w", err)
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

func acquire(ctx context.Context, ch chan struct{}) error {
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(ch chan struct{}) { <-ch }
