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

// memoryRecords is the in-process keeper behind [MemoryTokenStore] and
// [MemoryApprovalKeyStore]: records by id and one lock per id.
type memoryRecords[T any] struct {
	mu    sync.Mutex
	m     map[string]T             // guarded by mu
	locks map[string]chan struct{} // guarded by mu
}

func newMemoryRecords[T any]() *memoryRecords[T] {
	return &memoryRecords[T]{m: map[string]T{}, locks: map[string]chan struct{}{}}
}

func (s *memoryRecords[T]) load(id string) *T {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return nil
	}
	return &v
}

func (s *memoryRecords[T]) save(id string, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[id] = v
}

func (s *memoryRecords[T]) lock(ctx context.Context, id string) (func(), error) {
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

// fileRecords is the JSON file behind [FileTokenStore] and
// [FileApprovalKeyStore]: one object of records by id (mode 0600),
// written atomically (temp file + rename); lock serialises issuance within
// the process (a channel mutex) and across processes (an advisory lock on
// path + ".lock"). noun names the records in errors ("token").
type fileRecords[T any] struct {
	path string
	noun string
	mu   chan struct{} // in-process lock, held across lock..unlock
	rw   chan struct{} // guards read-modify-write of the file
}

func newFileRecords[T any](path, noun string) (*fileRecords[T], error) {
	if path == "" {
		return nil, fmt.Errorf("%s file: want a path", noun)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("%s file: %w", noun, err)
	}
	return &fileRecords[T]{path: path, noun: noun, mu: make(chan struct{}, 1), rw: make(chan struct{}, 1)}, nil
}

func (s *fileRecords[T]) read() (map[string]T, error) {
	m := map[string]T{}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) || (err == nil && len(b) == 0) {
		return m, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s file: %w", s.noun, err)
	}
	if json.Unmarshal(b, &m) != nil {
		// A corrupt file costs one issuance, not an outage.
		return map[string]T{}, nil
	}
	return m, nil
}

func (s *fileRecords[T]) load(ctx context.Context, id string) (*T, error) {
	if err := acquire(ctx, s.rw); err != nil {
		return nil, err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return nil, err
	}
	v, ok := m[id]
	if !ok {
		return nil, nil
	}
	return &v, nil
}

func (s *fileRecords[T]) save(ctx context.Context, id string, v T) error {
	if err := acquire(ctx, s.rw); err != nil {
		return err
	}
	defer release(s.rw)
	m, err := s.read()
	if err != nil {
		return err
	}
	m[id] = v
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("save %s: %w", s.noun, err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("save %s: %w", s.noun, err)
	}
	return nil
}

// lock takes the in-process lock, then an advisory lock on the lock
// file, polled so ctx can cancel the wait.
func (s *fileRecords[T]) lock(ctx context.Context) (func(), error) {
	if err := acquire(ctx, s.mu); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		release(s.mu)
		return nil, fmt.Errorf("%s lock: %w", s.noun, err)
	}
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			release(s.mu)
			return nil, fmt.Errorf("%s lock: %w", s.noun, err)
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

// writeFileAtomic writes b to path through a 0600 temp file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".kis-records-*")
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

func acquire(ctx context.Context, ch chan struct{}) error {
	select {
	case ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func release(ch chan struct{}) { <-ch }
