// Package mtls gives the services their transport security under
// `mesh: none`: certificates from a cert-manager Secret that are reloaded
// when renewed, TLS for the public listener, mutual TLS with a SPIFFE ID
// allow-list for the internal listener, and client configs that check the
// callee's identity. Under `mesh: istio` the sidecar does all of this; see
// Setup.
package mtls

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ID is a SPIFFE ID, spiffe://<trust-domain><path>. Service identities in a
// Shop have the Kubernetes form spiffe://<trust-domain>/ns/<ns>/sa/<account>.
type ID struct {
	TrustDomain string
	Path        string // starts with "/"
}

// ServiceAccountID is the SPIFFE ID of a Kubernetes service account.
func ServiceAccountID(trustDomain, namespace, serviceAccount string) ID {
	return ID{TrustDomain: trustDomain, Path: "/ns/" + namespace + "/sa/" + serviceAccount}
}

// ParseID parses and validates a SPIFFE ID as the SPIFFE specification
// defines it: lowercase trust domain, no port, user info, query or fragment,
// a non-empty path without empty, "." or ".." segments.
func ParseID(s string) (ID, error) {
	u, err := url.Parse(s)
	if err != nil {
		return ID{}, fmt.Errorf("SPIFFE ID %q: %w", s, err)
	}
	bad := func(why string) (ID, error) { return ID{}, fmt.Errorf("SPIFFE ID %q: %s", s, why) }
	switch {
	case u.Scheme != "spiffe":
		return bad("the scheme must be spiffe")
	case u.Host == "":
		return bad("the trust domain is missing")
	case u.User != nil || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "":
		return bad("user info, port, query and fragment are not allowed")
	case u.Path == "" || u.Path == "/":
		return bad("the path is missing")
	case strings.HasSuffix(u.Path, "/"):
		return bad("the path must not end with /")
	}
	for _, c := range u.Host {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_') {
			return bad("the trust domain may only hold lowercase letters, digits, '.', '-' and '_'")
		}
	}
	for _, seg := range strings.Split(u.Path[1:], "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("the path has an empty, '.' or '..' segment")
		}
	}
	return ID{TrustDomain: u.Host, Path: u.Path}, nil
}

// String is the URI form of the ID.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	return "spiffe://" + id.TrustDomain + id.Path
}

// IsZero reports whether id is unset.
func (id ID) IsZero() bool { return id == ID{} }

// Namespace is the Kubernetes namespace of a /ns/<ns>/sa/<account> ID, or "".
func (id ID) Namespace() string {
	ns, _ := id.kubernetes()
	return ns
}

// ServiceAccount is the service account of a /ns/<ns>/sa/<account> ID, or "".
func (id ID) ServiceAccount() string {
	_, sa := id.kubernetes()
	return sa
}

func (id ID) kubernetes() (namespace, serviceAccount string) {
	parts := strings.Split(id.Path, "/")
	if len(parts) == 5 && parts[0] == "" && parts[1] == "ns" && parts[3] == "sa" {
		return parts[2], parts[4]
	}
	return "", ""
}

// ErrNoID means a certificate carries no SPIFFE ID.
var ErrNoID = errors.New("the certificate has no SPIFFE ID")

// IDFromCertificate returns the SPIFFE ID in a certificate's URI SANs. A
// certificate with several SPIFFE IDs is refused: which one would be the
// caller is ambiguous.
func IDFromCertificate(cert *x509.Certificate) (ID, error) {
	var found []ID
	for _, u := range cert.URIs {
		if u.Scheme != "spiffe" {
			continue
		}
		id, err := ParseID(u.String())
		if err != nil {
			return ID{}, err
		}
		found = append(found, id)
	}
	switch len(found) {
	case 0:
		return ID{}, ErrNoID
	case 1:
		return found[0], nil
	}
	return ID{}, fmt.Errorf("the certificate has %d SPIFFE IDs, want one", len(found))
}

// Sibling is the ID of another service account in the same trust domain and
// namespace, e.g. the callee's ID derived from the caller's own.
func (id ID) Sibling(serviceAccount string) ID {
	return ServiceAccountID(id.TrustDomain, id.Namespace(), serviceAccount)
}
