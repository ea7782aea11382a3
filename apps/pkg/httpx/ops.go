package httpx

import (
	"context"
	"net/http"
	"time"
)

// opsHandler serves the probes and metrics.
func (s *Server) opsHandler() http.Handler {
	mux := http.NewServeMux()
	// Liveness says only that the process serves HTTP: a failing dependency
	// must not get every pod restarted.
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		_ = WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /metrics", s.Metrics.Handler())
	return mux
}

// readiness is the body of /readyz.
type readiness struct {
	Status string            `json:"status"` // ok, draining or unavailable
	Checks map[string]string `json:"checks,omitempty"`
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		_ = WriteJSON(w, http.StatusServiceUnavailable, readiness{Status: "draining"})
		return
	}
	results := s.runChecks(r.Context())
	status, code := "ok", http.StatusOK
	for _, res := range results {
		if res != "ok" {
			status, code = "unavailable", http.StatusServiceUnavailable
		}
	}
	_ = WriteJSON(w, code, readiness{Status: status, Checks: results})
}

// runChecks runs every check at once, each with its own timeout, so one slow
// dependency does not hide the state of the others; a check that ignores its
// context is reported as timed out rather than holding the probe. The ops
// port is reachable only by probes and monitoring, so failures are shown for
// debugging.
func (s *Server) runChecks(ctx context.Context) map[string]string {
	if len(s.Checks) == 0 {
		return nil
	}
	type result struct{ name, text string }
	done := make(chan result, len(s.Checks))
	for _, c := range s.Checks {
		go func() {
			cctx, cancel := context.WithTimeout(ctx, s.CheckTimeout)
			defer cancel()
			text := "ok"
			if err := c.Func(cctx); err != nil {
				text = err.Error()
				s.Logger.WarnContext(ctx, "readiness check failed", "check", c.Name, "error", err)
			}
			done <- result{c.Name, text}
		}()
	}
	results := make(map[string]string, len(s.Checks))
	for _, c := range s.Checks {
		results[c.Name] = "timed out"
	}
	timeout := time.NewTimer(s.CheckTimeout + 100*time.Millisecond)
	defer timeout.Stop()
	for range s.Checks {
		select {
		case r := <-done:
			results[r.name] = r.text
		case <-timeout.C:
			return results
		}
	}
	return results
}
