package config

import (
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Mesh says who terminates TLS between pods.
type Mesh string

// The meshes a Shop can run in.
const (
	// MeshNone: the services terminate TLS and mTLS themselves.
	MeshNone Mesh = "none"
	// MeshIstio: an Istio sidecar does mTLS and the services speak plain HTTP to it.
	MeshIstio Mesh = "istio"
)

// The variables every service reads. The operator sets them on each
// Deployment (internal/builder/services.go in the operator module).
const (
	EnvService        = "SHOPSTACK_SERVICE"
	EnvShop           = "SHOPSTACK_SHOP"
	EnvMesh           = "SHOPSTACK_MESH"
	EnvPublicAddr     = "SHOPSTACK_PUBLIC_ADDR"
	EnvInternalAddr   = "SHOPSTACK_INTERNAL_ADDR"
	EnvOpsAddr        = "SHOPSTACK_OPS_ADDR"
	EnvTLSDir         = "SHOPSTACK_TLS_DIR"
	EnvJWKSFile       = "SHOPSTACK_JWKS_FILE"
	EnvJWTIssuer      = "SHOPSTACK_JWT_ISSUER"
	EnvJWTAudience    = "SHOPSTACK_JWT_AUDIENCE"
	EnvAllowedCallers = "SHOPSTACK_ALLOWED_CALLERS"
	EnvLogLevel       = "SHOPSTACK_LOG_LEVEL"
	EnvBodyLimit      = "SHOPSTACK_BODY_LIMIT"
	EnvShutdownGrace  = "SHOPSTACK_SHUTDOWN_GRACE"
	EnvDrainDelay     = "SHOPSTACK_DRAIN_DELAY"
)

// CommonEnv lists the variables of Common, for DefineFlags.
var CommonEnv = []string{
	EnvService, EnvShop, EnvMesh, EnvPublicAddr, EnvInternalAddr, EnvOpsAddr, EnvTLSDir, EnvJWKSFile,
	EnvJWTIssuer, EnvJWTAudience, EnvAllowedCallers, EnvLogLevel, EnvBodyLimit, EnvShutdownGrace, EnvDrainDelay,
}

// Defaults of Common. Ports and paths match what the operator mounts and exposes.
const (
	DefaultPublicAddr    = ":8443"
	DefaultInternalAddr  = ":9443"
	DefaultOpsAddr       = ":8081"
	DefaultTLSDir        = "/etc/shopstack/tls"
	DefaultJWKSFile      = "/etc/shopstack/jwks/jwks.json"
	DefaultBodyLimit     = 1 << 20 // 1 MiB
	DefaultShutdownGrace = 20 * time.Second
	// DefaultDrainDelay is how long a terminating pod keeps serving while
	// reporting not ready, so endpoints and gateways stop sending it traffic
	// before its listeners close.
	DefaultDrainDelay = 5 * time.Second
)

// Common is the configuration every service embeds in its own Config.
type Common struct {
	Service        string        // user, order, payment or inventory
	Shop           string        // the Shop's name; informational
	Mesh           Mesh          // none or istio
	PublicAddr     string        // end-user API (TLS under mesh none)
	InternalAddr   string        // service-to-service API (mTLS under mesh none)
	OpsAddr        string        // /healthz, /readyz, /metrics over plain HTTP
	TLSDir         string        // tls.crt, tls.key, ca.crt; checked only under mesh none
	JWKSFile       string        // public keys of end-user tokens
	JWTIssuer      string        // expected iss
	JWTAudience    string        // expected aud
	AllowedCallers []string      // SPIFFE IDs the internal listener accepts
	LogLevel       slog.Level    // debug, info, warn or error
	BodyLimit      int64         // largest request body in bytes
	ShutdownGrace  time.Duration // longest wait for in-flight requests at shutdown
	DrainDelay     time.Duration // not-ready period before listeners close
}

// serviceName is a DNS label, because the name becomes part of Kubernetes names.
var serviceName = regexp.MustCompile(`^[a-z]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Common reads the settings every service shares.
func (r *Reader) Common() Common {
	c := Common{
		Service:        r.Required(EnvService),
		Shop:           r.String(EnvShop, ""),
		Mesh:           Mesh(r.OneOf(EnvMesh, string(MeshNone), string(MeshNone), string(MeshIstio))),
		PublicAddr:     r.String(EnvPublicAddr, DefaultPublicAddr),
		InternalAddr:   r.String(EnvInternalAddr, DefaultInternalAddr),
		OpsAddr:        r.String(EnvOpsAddr, DefaultOpsAddr),
		JWKSFile:       r.File(EnvJWKSFile, DefaultJWKSFile),
		JWTIssuer:      r.Required(EnvJWTIssuer),
		JWTAudience:    r.Required(EnvJWTAudience),
		AllowedCallers: r.List(EnvAllowedCallers, nil),
		LogLevel:       r.logLevel(EnvLogLevel, slog.LevelInfo),
		BodyLimit:      r.Bytes(EnvBodyLimit, DefaultBodyLimit),
		ShutdownGrace:  r.Duration(EnvShutdownGrace, DefaultShutdownGrace),
		DrainDelay:     r.Duration(EnvDrainDelay, DefaultDrainDelay),
	}
	// Under Istio the sidecar holds the certificates; the directory may still
	// be mounted but the service does not need it.
	if c.Mesh == MeshIstio {
		c.TLSDir = r.String(EnvTLSDir, DefaultTLSDir)
	} else {
		c.TLSDir = r.Dir(EnvTLSDir, DefaultTLSDir)
	}
	if c.Service != "" && !serviceName.MatchString(c.Service) {
		r.Fail(EnvService, "must be a lowercase DNS label, got %q", c.Service)
	}
	for _, id := range c.AllowedCallers {
		if u, err := url.Parse(id); err != nil || u.Scheme != "spiffe" || u.Host == "" || !strings.HasPrefix(u.Path, "/") {
			r.Fail(EnvAllowedCallers, "%q is not a SPIFFE ID (spiffe://<trust-domain>/<path>)", id)
		}
	}
	if c.ShutdownGrace == 0 {
		r.Fail(EnvShutdownGrace, "must be greater than zero")
	}
	if c.DrainDelay >= c.ShutdownGrace && c.ShutdownGrace > 0 {
		r.Fail(EnvDrainDelay, "must be shorter than %s (%s), got %s", EnvShutdownGrace, c.ShutdownGrace, c.DrainDelay)
	}
	return c
}

func (r *Reader) logLevel(name string, def slog.Level) slog.Level {
	v, ok := r.raw(name)
	if !ok {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		r.Fail(name, "must be debug, info, warn or error, got %q", v)
		return def
	}
	return l
}

// LoadCommon reads Common from the process environment.
func LoadCommon() (Common, error) {
	r := NewReader(Env())
	c := r.Common()
	return c, r.Err()
}
