package httpx

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// Server runs a service's three listeners:
//
//   - public: the end-user API, TLS when PublicTLS is set;
//   - internal: the service-to-service API, mTLS when InternalTLS is set;
//   - ops: /healthz, /readyz and /metrics over plain HTTP, because kubelet
//     probes and Prometheus carry no client certificate.
//
// Public and Internal are optional (nil: that listener is not opened).
// Under `mesh: istio` the TLS configs are nil and both APIs speak plain HTTP
// to the sidecar. Both APIs are wrapped in Instrument.
//
// Shutdown (Run's context cancelled, e.g. by SIGTERM) goes: /readyz turns 503
// so endpoints and gateways stop routing here; after DrainDelay the API
// listeners stop accepting and in-flight requests get until ShutdownGrace
// (counted from the start of shutdown) to finish; then the ops listener closes.
type Server struct {
	PublicAddr, InternalAddr, OpsAddr string
	Public, Internal                  http.Handler
	PublicTLS, InternalTLS            *tls.Config

	// Checks decide readiness (e.g. a database ping); all must pass.
	Checks []Check

	Logger    *slog.Logger       // nil: slog.Default()
	Metrics   *telemetry.Metrics // nil: a fresh registry
	BodyLimit int64              // request body cap; zero: 1 MiB

	ShutdownGrace time.Duration // zero: 20s
	DrainDelay    time.Duration // zero: none; the operator's pods use 5s
	CheckTimeout  time.Duration // per readiness check; zero: 2s

	once      sync.Once
	draining  atomic.Bool
	listeners map[string]net.Listener
	servers   map[string]*http.Server
}

// Check is one readiness condition.
type Check struct {
	Name string
	Func func(ctx context.Context) error
}

// Names of the listeners, for Addr.
const (
	ListenerPublic   = "public"
	ListenerInternal = "internal"
	ListenerOps      = "ops"
)

// Defaults of Server.
const (
	DefaultBodyLimit     = 1 << 20
	DefaultShutdownGrace = 20 * time.Second
	DefaultCheckTimeout  = 2 * time.Second
)

func (s *Server) defaults() {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.Metrics == nil {
		s.Metrics = telemetry.NewMetrics()
	}
	if s.BodyLimit == 0 {
		s.BodyLimit = DefaultBodyLimit
	}
	if s.ShutdownGrace <= 0 {
		s.ShutdownGrace = DefaultShutdownGrace
	}
	if s.CheckTimeout <= 0 {
		s.CheckTimeout = DefaultCheckTimeout
	}
}

// Listen opens the listeners without serving, so a caller (or a test using
// port 0) can learn the addresses before Run.
func (s *Server) Listen() error {
	var err error
	s.once.Do(func() { err = s.listen() })
	if err == nil && s.listeners == nil {
		err = errors.New("httpx: an earlier Listen failed")
	}
	return err
}

func (s *Server) listen() error {
	s.defaults()
	errorLog := slog.NewLogLogger(s.Logger.Handler(), slog.LevelWarn)
	api := func(h http.Handler, conf *tls.Config) *http.Server {
		return &http.Server{
			Handler:           Instrument(h, s.Logger, s.Metrics, s.BodyLimit),
			TLSConfig:         conf,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      60 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          errorLog,
		}
	}
	servers := map[string]*http.Server{}
	addrs := map[string]string{}
	if s.Public != nil {
		servers[ListenerPublic], addrs[ListenerPublic] = api(s.Public, s.PublicTLS), s.PublicAddr
	}
	if s.Internal != nil {
		servers[ListenerInternal], addrs[ListenerInternal] = api(s.Internal, s.InternalTLS), s.InternalAddr
	}
	servers[ListenerOps], addrs[ListenerOps] = &http.Server{
		Handler: s.opsHandler(), ReadHeaderTimeout: 5 * time.Second, ErrorLog: errorLog,
	}, s.OpsAddr

	listeners := map[string]net.Listener{}
	for name, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("listening on %s address %q: %w", name, addr, err)
		}
		listeners[name] = ln
	}
	s.servers, s.listeners = servers, listeners
	return nil
}

// Addr is the address a listener is bound to ("" if it is not open).
func (s *Server) Addr(listener string) string {
	if ln := s.listeners[listener]; ln != nil {
		return ln.Addr().String()
	}
	return ""
}

// Run serves until ctx is done, then shuts down gracefully. It returns nil
// after a clean shutdown, or the error that stopped a listener.
func (s *Server) Run(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	errc := make(chan error, len(s.servers))
	for name, srv := range s.servers {
		ln, useTLS := s.listeners[name], srv.TLSConfig != nil
		go func() {
			var err error
			if useTLS {
				err = srv.ServeTLS(ln, "", "")
			} else {
				err = srv.Serve(ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				err = nil
			} else if err != nil {
				err = fmt.Errorf("serving %s: %w", name, err)
			}
			errc <- err
		}()
		s.Logger.Info("listening", slog.String("listener", name), slog.String("addr", ln.Addr().String()),
			slog.Bool("tls", useTLS))
	}

	var failed error
	select {
	case <-ctx.Done():
	case failed = <-errc:
		s.Logger.Error("listener failed, shutting down", slog.Any("error", failed))
	}
	s.shutdown()
	return failed
}

// shutdown drains the server as described on Server.
func (s *Server) shutdown() {
	start := time.Now()
	s.draining.Store(true)
	s.Logger.Info("shutting down: not ready any more, draining",
		slog.Duration("drain_delay", s.DrainDelay), slog.Duration("grace", s.ShutdownGrace))
	deadline, cancel := context.WithTimeout(context.Background(), s.ShutdownGrace)
	defer cancel()

	select {
	case <-time.After(min(s.DrainDelay, s.ShutdownGrace)):
	case <-deadline.Done():
	}

	var wg sync.WaitGroup
	for name, srv := range s.servers {
		if name == ListenerOps {
			continue
		}
		wg.Go(func() {
			if err := srv.Shutdown(deadline); err != nil {
				s.Logger.Warn("grace period over, closing connections", slog.String("listener", name), slog.Any("error", err))
				_ = srv.Close()
			}
		})
	}
	wg.Wait()
	_ = s.servers[ListenerOps].Close()
	s.Logger.Info("shut down", slog.Duration("took", time.Since(start)))
}
