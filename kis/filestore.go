package kis

import (
	"context"
	"errors"
)

// FileTokenStore keeps tokens in one JSON file (mode 0600), keyed by id
// (server and hashed app key), written atomically (temp file + rename).
// Lock serialises issuance within the process (a channel mutex) and
// across processes (an advisory lock on path + ".lock").
type FileTokenStore struct {
	f *fileRecords[Token]
}

// NewFileTokenStore returns a store at path, creating its directory
// (0700) if needed.
func NewFileTokenStore(path string) (*FileTokenStore, error) {
	f, err := newFileRecords[Token](path, "token")
	if err != nil {
		return nil, err
	}
	return &FileTokenStore{f: f}, nil
}

// Path returns the file the store writes.
func (s *FileTokenStore) Path() string { return s.f.path }

// Load implements [TokenStore].
func (s *FileTokenStore) Load(ctx context.Context, id string) (*Token, error) {
	return s.f.load(ctx, id)
}

// Save implements [TokenStore].
func (s *FileTokenStore) Save(ctx context.Context, id string, t *Token) error {
	if t == nil {
		return errors.New("save token: nil token")
	}
	return s.f.save(ctx, id, *t)
}

// Lock implements [TokenStore]: the in-process lock, then an advisory
// lock on the lock file, polled so ctx can cancel the wait.
func (s *FileTokenStore) Lock(ctx context.Context, _ string) (func(), error) {
	return s.f.lock(ctx)
}
