package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	shopv1 "github.com/shopstack/shopstack/api/v1alpha1"
	"github.com/shopstack/shopstack/internal/apply"
	shopbuilder "github.com/shopstack/shopstack/internal/builder"
	"github.com/shopstack/shopstack/internal/credentials"
)

// dataBackedBy names the data tier whose volumes hold what a credential
// protects: losing the Secret while that data exists must never lead to a new
// value, or the data becomes unreachable (passwords, the card encryption key,
// the first admin's password hash).
var dataBackedBy = map[shopbuilder.CredentialKind]string{
	shopbuilder.CredPostgres: shopbuilder.ComponentPostgres,
	shopbuilder.CredPayment:  shopbuilder.ComponentPostgres,
	shopbuilder.CredAdmin:    shopbuilder.ComponentPostgres,
	shopbuilder.CredRedis:    shopbuilder.ComponentRedis,
}

// ensureCredentials creates each credentials Secret that does not exist yet,
// exactly once, and returns the builder inputs derived from them (the JWKS).
// An existing Secret is never changed. A missing one whose data still exists
// on a volume is reported, not regenerated.
func (r *ShopReconciler) ensureCredentials(ctx context.Context, st *reconcileState) (shopbuilder.Inputs, error) {
	in := r.Inputs
	shop := st.shop
	var created []string
	defer func() {
		if len(created) > 0 {
			r.Recorder.Eventf(shop, nil, corev1.EventTypeNormal, "CreatedSecrets", "Create",
				"created Secret(s) %s: generated once, never rewritten", strings.Join(created, ", "))
		}
	}()
	for _, kind := range shopbuilder.AllCredentials {
		secret, err := r.cachedCredentialSecret(ctx, shop, kind)
		if err != nil {
			return in, err
		}
		if secret == nil {
			if component, ok := dataBackedBy[kind]; ok {
				hasData, err := r.hasVolumes(ctx, shop, component)
				if err != nil {
					return in, err
				}
				if hasData {
					// Only a Secret that is really gone is reported: one
					// restored without the Shop's labels is not in the cache.
					if secret, err = r.uncachedCredentialSecret(ctx, shop, kind); err != nil {
						return in, err
					}
					if secret == nil {
						st.credentialsLost = append(st.credentialsLost, shopbuilder.CredentialSecretName(shop, kind))
						continue
					}
				}
			}
		}
		if secret == nil {
			data, err := credentials.Generate(kind)
			if err != nil {
				return in, fmt.Errorf("generating %s: %w", kind, err)
			}
			secret = shopbuilder.CredentialSecret(shop, kind, data)
			ok, err := apply.CreateOnce(ctx, r.Client, secret)
			if err != nil {
				return in, err
			}
			if ok {
				created = append(created, secret.Name)
			} else {
				// It exists but the cache has not seen it (just created, or
				// restored without labels): use the stored value, never ours.
				if secret, err = r.uncachedCredentialSecret(ctx, shop, kind); err != nil {
					return in, err
				}
				if secret == nil {
					return in, fmt.Errorf("Secret %s exists but cannot be read", shopbuilder.CredentialSecretName(shop, kind))
				}
			}
		}
		if err := credentials.Validate(kind, secret.Data); err != nil {
			st.credentialsInvalid = append(st.credentialsInvalid, fmt.Sprintf("Secret %s: %v", secret.Name, err))
			continue
		}
		if err := r.adoptCredentials(ctx, shop, kind, secret); err != nil {
			return in, err
		}
		if kind == shopbuilder.CredJWTSigning {
			jwks, err := credentials.JWKS(secret.Data)
			if err != nil {
				return in, fmt.Errorf("Secret %s: %w", secret.Name, err)
			}
			in.JWKS = jwks
		}
	}
	return in, nil
}

// cachedCredentialSecret reads a credentials Secret from the cache, or
// returns nil when the cache does not hold it.
func (r *ShopReconciler) cachedCredentialSecret(ctx context.Context, shop *shopv1.Shop, kind shopbuilder.CredentialKind) (*corev1.Secret, error) {
	return r.readSecret(ctx, r.Client, shop, kind)
}

// uncachedCredentialSecret reads a credentials Secret from the API server.
func (r *ShopReconciler) uncachedCredentialSecret(ctx context.Context, shop *shopv1.Shop, kind shopbuilder.CredentialKind) (*corev1.Secret, error) {
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	return r.readSecret(ctx, reader, shop, kind)
}

func (r *ShopReconciler) readSecret(ctx context.Context, reader client.Reader, shop *shopv1.Shop, kind shopbuilder.CredentialKind) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: shop.Namespace, Name: shopbuilder.CredentialSecretName(shop, kind)}
	secret := &corev1.Secret{}
	err := reader.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key.Name, err)
	}
	return secret, nil
}

// hasVolumes reports whether PersistentVolumeClaims of a data tier exist.
func (r *ShopReconciler) hasVolumes(ctx context.Context, shop *shopv1.Shop, component string) (bool, error) {
	pvcs := &corev1.PersistentVolumeClaimList{}
	if err := r.List(ctx, pvcs, client.InNamespace(shop.Namespace),
		client.MatchingLabels{shopbuilder.LabelInstance: shop.Name, shopbuilder.LabelComponent: component}); err != nil {
		return false, fmt.Errorf("listing PersistentVolumeClaims of %s: %w", component, err)
	}
	return len(pvcs.Items) > 0, nil
}

// caBundle returns the CA certificate cert-manager put beside the first
// issued service certificate (the Secrets carry the Shop's labels, so they are
// cached), or "" before any is issued.
func (r *ShopReconciler) caBundle(ctx context.Context, shop *shopv1.Shop) (string, error) {
	for _, svc := range shopv1.AllServices {
		s := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: shop.Namespace, Name: shopbuilder.ServiceCertSecretName(shop, svc)}, s)
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("reading Secret %s: %w", s.Name, err)
		}
		if ca := s.Data["ca.crt"]; len(ca) > 0 {
			return string(ca), nil
		}
	}
	return "", nil
}

// adoptCredentials makes a credentials Secret's labels and owner reference
// follow the Shop: owned under deletionPolicy Delete (it goes with the Shop),
// not owned under Retain (it outlives the Shop with the volumes it unlocks).
// Only metadata is patched; the values are never touched.
func (r *ShopReconciler) adoptCredentials(ctx context.Context, shop *shopv1.Shop, kind shopbuilder.CredentialKind, secret *corev1.Secret) error {
	want := shopbuilder.CredentialSecret(shop, kind, nil)
	var refs []metav1.OwnerReference
	for _, ref := range secret.OwnerReferences {
		if ref.Kind != "Shop" || !strings.HasPrefix(ref.APIVersion, shopv1.GroupVersion.Group+"/") {
			refs = append(refs, ref) // someone else's: keep
		}
	}
	refs = append(refs, want.OwnerReferences...)
	labelsOK := true
	for k, v := range want.Labels {
		if secret.Labels[k] != v {
			labelsOK = false
		}
	}
	if labelsOK && equality.Semantic.DeepEqual(refs, secret.OwnerReferences) {
		return nil
	}
	patch := client.MergeFrom(secret.DeepCopy())
	secret.OwnerReferences = refs
	if secret.Labels == nil {
		secret.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		secret.Labels[k] = v
	}
	if err := r.Patch(ctx, secret, patch, client.FieldOwner(apply.FieldOwner)); err != nil {
		return fmt.Errorf("updating the owner of Secret %s for deletionPolicy %s: %w", secret.Name, shop.Spec.DeletionPolicy, err)
	}
	return nil
}
