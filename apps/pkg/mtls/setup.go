package mtls

import (
	"crypto/tls"

	"github.com/shopstack/shopstack/apps/pkg/config"
	"github.com/shopstack/shopstack/apps/pkg/httpx"
)

// Setup is a service's transport security for its mesh mode, so main.go
// wires the same way in both:
//
//   - mesh none: the service terminates TLS on the public listener and mTLS
//     on the internal one, checks callers' SPIFFE IDs, and calls other
//     services over mTLS (https URLs);
//   - mesh istio: the sidecar does all of that, so PublicTLS, InternalTLS and
//     ClientTLS are nil (plain HTTP to the sidecar, http URLs, as the
//     operator's SHOPSTACK_*_URL variables already say) and Authorize only
//     records the caller the sidecar reports, leaving enforcement to the
//     AuthorizationPolicy.
//
// A nil *tls.Config is what httpx.Server and clientx take for plain HTTP.
type Setup struct {
	mesh   config.Mesh
	source *Source
}

// NewSetup loads the certificates from tlsDir under mesh none; under istio
// it reads nothing.
func NewSetup(mesh config.Mesh, tlsDir string, opts ...Option) (*Setup, error) {
	if mesh == config.MeshIstio {
		return &Setup{mesh: mesh}, nil
	}
	src, err := NewSource(tlsDir, opts...)
	if err != nil {
		return nil, err
	}
	return &Setup{mesh: mesh, source: src}, nil
}

// Mesh is the mode the Setup was made for.
func (s *Setup) Mesh() config.Mesh { return s.mesh }

// Source is the certificate source, or nil under istio.
func (s *Setup) Source() *Source { return s.source }

// PublicTLS is the public listener's config, or nil under istio.
func (s *Setup) PublicTLS() *tls.Config {
	if s.source == nil {
		return nil
	}
	return s.source.ServerTLS()
}

// InternalTLS is the internal listener's config, or nil under istio.
func (s *Setup) InternalTLS() *tls.Config {
	if s.source == nil {
		return nil
	}
	return s.source.MutualTLS()
}

// ClientTLS is the config for calling peer, or nil under istio.
func (s *Setup) ClientTLS(peer Peer) (*tls.Config, error) {
	if s.source == nil {
		return nil, nil
	}
	return s.source.ClientTLS(peer)
}

// Authorize is the internal listener's caller check: RequireCaller under
// mesh none, the sidecar's report under istio.
func (s *Setup) Authorize(allowed []string) (httpx.Middleware, error) {
	if s.source == nil {
		// Validate anyway: a typo in the allow-list should fail in both modes.
		for _, a := range allowed {
			if _, err := ParseID(a); err != nil {
				return nil, err
			}
		}
		return sidecarCaller, nil
	}
	return RequireCaller(allowed)
}

// Checks are the readiness checks of the Setup: the certificate's validity
// under mesh none, nothing under istio.
func (s *Setup) Checks() []httpx.Check {
	if s.source == nil {
		return nil
	}
	return []httpx.Check{{Name: "tls-certificate", Func: s.source.Check}}
}
