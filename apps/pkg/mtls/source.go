package mtls

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// The files of a cert-manager certificate Secret, as mounted in the pod.
const (
	CertFile = "tls.crt" // the leaf, then any intermediates
	KeyFile  = "tls.key"
	CAFile   = "ca.crt" // the CA that signs every certificate of the Shop
)

// DefaultReloadInterval is how often the files are re-read, at most. Renewal
// happens weeks before expiry, so seconds of delay do not matter; reading
// three small files that often costs nothing.
const DefaultReloadInterval = 5 * time.Second

// Source holds a service's certificate, key and CA bundle from a directory,
// and re-reads them when their content changes. Kubernetes updates a mounted
// Secret by writing a new hidden directory and swapping the ..data symlink,
// so the files' own mtimes tell nothing: the Source compares content. It
// checks lazily, from the TLS handshake callbacks, at most once per reload
// interval, so it needs no goroutine and renewed certificates reach new
// connections without a restart. A broken update (say, a key that does not
// match the certificate) is logged and the previous certificate kept.
type Source struct {
	dir      string
	interval time.Duration
	now      func() time.Time
	logger   *slog.Logger

	current   atomic.Pointer[snapshot]
	lastCheck atomic.Int64 // unix nanoseconds of the last look at the files
	reloading sync.Mutex
}

// snapshot is one consistent set of files and the configs derived from them.
type snapshot struct {
	sum    [sha256.Size]byte
	cert   *tls.Certificate
	roots  *x509.CertPool
	id     ID
	mutual *tls.Config
}

// Option configures a Source.
type Option func(*Source)

// ReloadInterval sets how often the files are checked for changes; zero
// checks at every handshake.
func ReloadInterval(d time.Duration) Option { return func(s *Source) { s.interval = d } }

// WithLogger logs reloads and failed reloads to l.
func WithLogger(l *slog.Logger) Option { return func(s *Source) { s.logger = l } }

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option { return func(s *Source) { s.now = now } }

// NewSource loads tls.crt, tls.key and ca.crt from dir. It fails when they
// are missing, malformed, do not match, or the certificate does not chain to
// ca.crt: better a pod that never starts than one that fails every call.
func NewSource(dir string, opts ...Option) (*Source, error) {
	s := &Source{dir: dir, interval: DefaultReloadInterval, now: time.Now, logger: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	if _, err := s.Reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Reload re-reads the files now and reports whether they changed.
func (s *Source) Reload() (changed bool, err error) {
	s.reloading.Lock()
	defer s.reloading.Unlock()
	return s.reloadLocked()
}

func (s *Source) reloadLocked() (bool, error) {
	s.lastCheck.Store(s.now().UnixNano())
	certPEM, keyPEM, caPEM, err := s.readFiles()
	if err != nil {
		return false, err
	}
	sum := contentSum(certPEM, keyPEM, caPEM)
	if old := s.current.Load(); old != nil && old.sum == sum {
		return false, nil
	}
	snap, err := s.parse(certPEM, keyPEM, caPEM)
	if err != nil {
		return false, err
	}
	snap.sum = sum
	s.current.Store(snap)
	s.logger.Info("TLS certificate loaded", slog.String("dir", s.dir),
		slog.String("serial", snap.cert.Leaf.SerialNumber.String()),
		slog.Time("not_after", snap.cert.Leaf.NotAfter), slog.String("spiffe_id", snap.id.String()))
	return true, nil
}

func (s *Source) readFiles() (certPEM, keyPEM, caPEM []byte, err error) {
	read := func(name string) []byte {
		if err != nil {
			return nil
		}
		var b []byte
		b, err = os.ReadFile(filepath.Join(s.dir, name))
		if err == nil && len(bytes.TrimSpace(b)) == 0 {
			err = fmt.Errorf("%s is empty", filepath.Join(s.dir, name))
		}
		return b
	}
	certPEM, keyPEM, caPEM = read(CertFile), read(KeyFile), read(CAFile)
	if err != nil {
		err = fmt.Errorf("reading TLS files: %w", err)
	}
	return certPEM, keyPEM, caPEM, err
}

// contentSum hashes the three files with their lengths, so moving bytes from
// one file to the next cannot give the same sum.
func contentSum(parts ...[]byte) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	var sum [sha256.Size]byte
	copy(sum[:], h.Sum(nil))
	return sum
}

func (s *Source) parse(certPEM, keyPEM, caPEM []byte) (*snapshot, error) {
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("loading %s and %s from %s: %w", CertFile, KeyFile, s.dir, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("%s in %s holds no PEM certificate", CAFile, s.dir)
	}
	// This checks who signed the certificate, not when: an expired
	// certificate is reported by Check, with a clearer message.
	at := s.now()
	if at.Before(cert.Leaf.NotBefore) || at.After(cert.Leaf.NotAfter) {
		at = cert.Leaf.NotBefore
	}
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: intermediates(cert.Certificate),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}, CurrentTime: at,
	}); err != nil {
		return nil, fmt.Errorf("%s in %s does not chain to %s: %w", CertFile, s.dir, CAFile, err)
	}
	id, err := IDFromCertificate(cert.Leaf)
	if err != nil && !errors.Is(err, ErrNoID) {
		return nil, fmt.Errorf("%s in %s: %w", CertFile, s.dir, err)
	}
	return &snapshot{
		cert: &cert, roots: roots, id: id,
		mutual: &tls.Config{
			MinVersion:   tls.VersionTLS13,
			Certificates: []tls.Certificate{cert},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    roots,
			NextProtos:   []string{"h2", "http/1.1"},
		},
	}, nil
}

func intermediates(chain [][]byte) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, der := range chain[min(1, len(chain)):] {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// snapshot returns the current files, re-reading them first when the reload
// interval has passed. Only one handshake at a time does the reading; the
// others go on with what is loaded.
func (s *Source) snapshot() *snapshot {
	if s.now().UnixNano()-s.lastCheck.Load() >= int64(s.interval) && s.reloading.TryLock() {
		if _, err := s.reloadLocked(); err != nil {
			s.logger.Warn("TLS files changed but cannot be loaded; keeping the previous certificate",
				slog.String("dir", s.dir), slog.Any("error", err))
		}
		s.reloading.Unlock()
	}
	return s.current.Load()
}

// Certificate is the service's current certificate.
func (s *Source) Certificate() *tls.Certificate { return s.snapshot().cert }

// Roots is the current CA bundle.
func (s *Source) Roots() *x509.CertPool { return s.snapshot().roots }

// ID is the SPIFFE ID of the service's own certificate (zero if it has none).
func (s *Source) ID() ID { return s.snapshot().id }

// Check fails when the certificate being served is outside its validity
// period, for a readiness check: such a pod can serve nobody.
func (s *Source) Check(context.Context) error {
	leaf := s.snapshot().cert.Leaf
	now := s.now()
	if now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		return fmt.Errorf("the TLS certificate (serial %s) is valid only from %s to %s",
			leaf.SerialNumber, leaf.NotBefore.Format(time.RFC3339), leaf.NotAfter.Format(time.RFC3339))
	}
	return nil
}
