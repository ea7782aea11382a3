package builder

import (
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// CertificateDuration and CertificateRenewBefore apply to leaf certificates.
const (
	CertificateDuration    = 90 * 24 * time.Hour
	CertificateRenewBefore = 30 * 24 * time.Hour
	caDuration             = 5 * 365 * 24 * time.Hour
)

// IssuerRef is the issuer of the Shop's certificates: the admin's, or the
// Shop's own bootstrap CA.
func IssuerRef(shop *shopv1.Shop) cmmeta.IssuerReference {
	if r := shop.Spec.Security.IssuerRef; r != nil {
		kind := r.Kind
		if kind == "" {
			kind = cmapi.IssuerKind
		}
		group := r.Group
		if group == "" {
			group = "cert-manager.io"
		}
		return cmmeta.IssuerReference{Name: r.Name, Kind: kind, Group: group}
	}
	return cmmeta.IssuerReference{Name: Name(shop, "ca"), Kind: cmapi.IssuerKind, Group: "cert-manager.io"}
}

// dnsNames are the in-cluster names of a Service.
func dnsNames(shop *shopv1.Shop, service string) []string {
	return []string{
		service,
		service + "." + shop.Namespace,
		service + "." + shop.Namespace + ".svc",
		service + "." + shop.Namespace + ".svc.cluster.local",
	}
}

// certificate is the shape every leaf certificate shares: ECDSA P-256, a fresh
// key at each renewal, and the Shop's labels on the Secret cert-manager writes.
func certificate(shop *shopv1.Shop, name, component, secretName string) *cmapi.Certificate {
	return &cmapi.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind},
		ObjectMeta: ObjectMeta(shop, name, component),
		Spec: cmapi.CertificateSpec{
			SecretName:     secretName,
			SecretTemplate: &cmapi.CertificateSecretTemplate{Labels: Labels(shop, component)},
			Duration:       &metav1.Duration{Duration: CertificateDuration},
			RenewBefore:    &metav1.Duration{Duration: CertificateRenewBefore},
			PrivateKey: &cmapi.CertificatePrivateKey{
				Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways,
			},
			IssuerRef: IssuerRef(shop),
		},
	}
}

// ServiceCertificate is one service's certificate: its Service's DNS names for
// TLS servers and its SPIFFE ID for mTLS clients and servers.
func ServiceCertificate(shop *shopv1.Shop, svc shopv1.ServiceName) *cmapi.Certificate {
	c := certificate(shop, ServiceCertSecretName(shop, svc), string(svc), ServiceCertSecretName(shop, svc))
	c.Spec.DNSNames = dnsNames(shop, Name(shop, string(svc)))
	c.Spec.URIs = []string{SPIFFEID(shop, ServiceAccountName(shop, svc))}
	c.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth}
	return c
}

// DataCertificate is the server certificate of Postgres or Redis, valid for
// the headless Service's pod names and the client-facing Services.
func DataCertificate(shop *shopv1.Shop, component string, services ...string) *cmapi.Certificate {
	c := certificate(shop, Name(shop, component), component, Name(shop, component, "tls"))
	for _, s := range append([]string{Name(shop, component)}, services...) {
		c.Spec.DNSNames = append(c.Spec.DNSNames, dnsNames(shop, s)...)
	}
	c.Spec.DNSNames = append(c.Spec.DNSNames, "*."+Name(shop, component)+"."+shop.Namespace+".svc", "*."+Name(shop, component)+"."+shop.Namespace+".svc.cluster.local")
	c.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth, cmapi.UsageClientAuth}
	return c
}

// GatewayCertificate serves the public host names, or nil without a gateway.
func GatewayCertificate(shop *shopv1.Shop) *cmapi.Certificate {
	if len(shop.Spec.Gateway.Hosts) == 0 {
		return nil
	}
	c := certificate(shop, Name(shop, ComponentGateway), ComponentGateway, GatewayCertSecretName(shop))
	for _, h := range shop.Spec.Gateway.Hosts {
		c.Spec.DNSNames = append(c.Spec.DNSNames, string(h))
	}
	c.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageDigitalSignature, cmapi.UsageKeyEncipherment, cmapi.UsageServerAuth}
	return c
}

// GatewayCertSecretName holds the gateway's TLS certificate.
func GatewayCertSecretName(shop *shopv1.Shop) string { return Name(shop, ComponentGateway, "tls") }

// BootstrapIssuers is the CA chain of a Shop without issuerRef: a self-signed
// Issuer signs the Shop's CA Certificate, and a CA Issuer signs everything
// else with it. With issuerRef it is empty.
func BootstrapIssuers(shop *shopv1.Shop) (selfSigned *cmapi.Issuer, ca *cmapi.Certificate, caIssuer *cmapi.Issuer) {
	if shop.Spec.Security.IssuerRef != nil {
		return nil, nil, nil
	}
	issuerMeta := metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.IssuerKind}
	selfSigned = &cmapi.Issuer{
		TypeMeta:   issuerMeta,
		ObjectMeta: ObjectMeta(shop, Name(shop, "selfsigned"), ComponentCA),
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}
	ca = &cmapi.Certificate{
		TypeMeta:   metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind},
		ObjectMeta: ObjectMeta(shop, Name(shop, "ca"), ComponentCA),
		Spec: cmapi.CertificateSpec{
			IsCA: true,
			// X.509 limits a common name to 64 characters: the Shop's name
			// fits (at most 30), its namespace goes into the OU (at most 63).
			CommonName:     "shopstack CA " + shop.Name,
			Subject:        &cmapi.X509Subject{OrganizationalUnits: []string{shop.Namespace}},
			SecretName:     Name(shop, "ca"),
			SecretTemplate: &cmapi.CertificateSecretTemplate{Labels: Labels(shop, ComponentCA)},
			Duration:       &metav1.Duration{Duration: caDuration},
			PrivateKey:     &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256},
			IssuerRef:      cmmeta.IssuerReference{Name: selfSigned.Name, Kind: cmapi.IssuerKind, Group: "cert-manager.io"},
		},
	}
	caIssuer = &cmapi.Issuer{
		TypeMeta:   issuerMeta,
		ObjectMeta: ObjectMeta(shop, Name(shop, "ca"), ComponentCA),
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: Name(shop, "ca")}}},
	}
	return selfSigned, ca, caIssuer
}
