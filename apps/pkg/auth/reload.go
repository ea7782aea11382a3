package auth

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReloadInterval is how often key files are re-read, at most. A
// ConfigMap or Secret update takes the kubelet up to a minute to deliver,
// so a few seconds more do not matter.
const DefaultReloadInterval = 5 * time.Second

// watched is a value built from files, rebuilt when their content changes.
// Kubernetes swaps a ..data symlink to update a mounted volume, so content,
// not mtime, is compared. Files are checked lazily, at most once per
// interval, from the calls that need the value: no goroutine to stop.
type watched[T any] struct {
	paths    []string
	interval time.Duration
	now      func() time.Time
	build    func(contents [][]byte) (T, error)
	onError  func(error)

	current   atomic.Pointer[version[T]]
	lastCheck atomic.Int64
	mu        sync.Mutex
}

type version[T any] struct {
	value T
	sum   [sha256.Size]byte
}

// load reads the files now; it is how a watched value starts.
func (w *watched[T]) load() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.reloadLocked()
	return err
}

func (w *watched[T]) reloadLocked() (bool, error) {
	w.lastCheck.Store(w.now().UnixNano())
	contents := make([][]byte, len(w.paths))
	h := sha256.New()
	for i, p := range w.paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return false, err
		}
		contents[i] = bytes.TrimSpace(b)
		fmt.Fprintf(h, "%d:", len(contents[i]))
		h.Write(contents[i])
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	if cur := w.current.Load(); cur != nil && cur.sum == sum {
		return false, nil
	}
	v, err := w.build(contents)
	if err != nil {
		return false, err
	}
	w.current.Store(&version[T]{value: v, sum: sum})
	return true, nil
}

// get returns the value, re-reading the files first when the interval has
// passed or, with within > 0, when the last look is older than within (for
// a caller that has reason to think the files changed).
func (w *watched[T]) get(within time.Duration) T {
	age := time.Duration(w.now().UnixNano() - w.lastCheck.Load())
	if (age >= w.interval || (within > 0 && age >= within)) && w.mu.TryLock() {
		if _, err := w.reloadLocked(); err != nil && w.onError != nil {
			w.onError(err)
		}
		w.mu.Unlock()
	}
	return w.current.Load().value
}
