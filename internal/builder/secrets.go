package builder

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
)

// CredentialKind names one of the Secrets the operator creates once.
type CredentialKind string

// The Secrets created once per Shop and never rewritten.
const (
	CredJWTSigning CredentialKind = "jwt-signing"
	CredPayment    CredentialKind = "payment-key"
	CredAdmin      CredentialKind = "admin"
	CredPostgres   CredentialKind = "postgres-credentials"
	CredRedis      CredentialKind = "redis-credentials"
)

// AllCredentials lists the credentials Secrets in creation order.
var AllCredentials = []CredentialKind{CredJWTSigning, CredPayment, CredAdmin, CredPostgres, CredRedis}

// Keys inside the credentials Secrets.
const (
	KeyJWTSigningKey = "signing.key" // PEM, EC P-256 private key
	KeyJWTKeyID      = "kid"
	KeyEncryptionKey = "encryption.key" // 32 random bytes for AES-256-GCM
	KeyUsername      = "username"
	KeyPassword      = "password"
	KeyRedisACL      = "users.acl" // Redis ACL file with SHA-256 password hashes
	// Postgres roles besides one per service.
	KeyPGSuperuser   = "superuser"
	KeyPGReplication = "replication"
	KeyPGOperator    = "operator"
	// Redis users besides one per service.
	KeyRedisReplication = "replication"
	KeyRedisSentinel    = "sentinel"
)

// CredentialSecretName is the name of one credentials Secret.
func CredentialSecretName(shop *shopv1.Shop, kind CredentialKind) string {
	return Name(shop, string(kind))
}

// CredentialSecret wraps data generated once into the Secret that keeps it.
// Under deletionPolicy Retain it has no owner reference, so deleting the Shop
// leaves it behind and a new Shop of the same name adopts it.
func CredentialSecret(shop *shopv1.Shop, kind CredentialKind, data map[string][]byte) *corev1.Secret {
	meta := ObjectMeta(shop, CredentialSecretName(shop, kind), ComponentCredentials)
	if shop.Spec.DeletionPolicy != shopv1.DeletionDelete {
		meta.OwnerReferences = nil
	}
	meta.Annotations = map[string]string{
		"shopstack.dev/created-once": "true",
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta,
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
