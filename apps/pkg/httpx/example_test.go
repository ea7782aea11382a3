package httpx_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shopstack/shopstack/apps/pkg/auth"
	"github.com/shopstack/shopstack/apps/pkg/clientx"
	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
	"github.com/shopstack/shopstack/apps/pkg/mtls"
	"github.com/shopstack/shopstack/apps/pkg/telemetry"
)

// This is how a service's main.go (here the order service's) wires the
// shared packages. The same code runs under mesh none and mesh istio: under
// istio the TLS configs are nil and the URLs are http.
func Example_serviceMain() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := runOrder(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "order:", err)
		os.Exit(1)
	}
}

func runOrder(ctx context.Context) error {
	// Configuration: every problem reported at once, naming the variable.
	r := config.NewReader(config.Env())
	common := r.Common()
	paymentURL := r.Required("SHOPSTACK_PAYMENT_URL")
	if err := r.Err(); err != nil {
		return err
	}

	logger := telemetry.NewLogger(os.Stderr, common.LogLevel, common.Service)
	slog.SetDefault(logger)
	metrics := telemetry.NewMetrics()

	// Transport security for the mesh mode, and end-user tokens.
	sec, err := mtls.NewSetup(common.Mesh, common.TLSDir, mtls.WithLogger(logger))
	if err != nil {
		return err
	}
	tokens, err := auth.NewVerifier(auth.VerifierConfig{
		JWKSFile: common.JWKSFile, Issuer: common.JWTIssuer, Audience: common.JWTAudience, Logger: logger,
	})
	if err != nil {
		return err
	}

	// A client for a callee: mTLS that checks the callee's name, a
	// timeout per call, the request ID passed on, a circuit breaker.
	peer, err := mtls.PeerForURL(paymentURL)
	if err != nil {
		return err
	}
	paymentTLS, err := sec.ClientTLS(peer) // nil under istio
	if err != nil {
		return err
	}
	payment, err := clientx.New(clientx.Config{
		Name: "payment", BaseURL: paymentURL, TLS: paymentTLS, Timeout: 3 * time.Second, Logger: logger,
	})
	if err != nil {
		return err
	}
	defer payment.Close()

	// The end-user API: every route that needs a user goes through
	// tokens.Require; admin-only ones add auth.RequireRole("admin").
	public := httpx.NewRouter()
	public.Handle("POST /v1/orders", tokens.Require(httpx.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		claims, _ := auth.ClaimsFrom(r.Context())
		var res struct {
			ID string `json:"id"`
		}
		err := payment.Do(r.Context(), clientx.Request{
			Method: "POST", Path: "/v1/payments", Body: map[string]string{"customer": claims.Subject},
			Header: http.Header{"Idempotency-Key": {"order-1"}},
		}, &res)
		if err != nil {
			return err // a failing payment service becomes a 503 JSON error
		}
		return httpx.WriteJSON(w, http.StatusCreated, res)
	})))

	// The service-to-service API: only the callers the call graph allows.
	internal := httpx.NewRouter()
	authorize, err := sec.Authorize(common.AllowedCallers)
	if err != nil {
		return err
	}

	srv := &httpx.Server{
		PublicAddr: common.PublicAddr, InternalAddr: common.InternalAddr, OpsAddr: common.OpsAddr,
		Public: public, PublicTLS: sec.PublicTLS(),
		Internal: authorize(internal), InternalTLS: sec.InternalTLS(),
		Checks: sec.Checks(), // append the store's ping: httpx.Check{Name: "postgres", Func: db.Ping}
		Logger: logger, Metrics: metrics, BodyLimit: common.BodyLimit,
		ShutdownGrace: common.ShutdownGrace, DrainDelay: common.DrainDelay,
	}
	return srv.Run(ctx)
}
