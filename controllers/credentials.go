package controllers

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
	for _, kind := range shopbuilder.AllCredentials {
		secret, err := r.credentialSecret(ctx, shop, kind)
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
					st.credentialsLost = append(st.credentialsLost, shopbuilder.CredentialSecretName(shop, kind))
					continue
				}
			}
			data, err := credentials.Generate(kind)
			if err != nil {
				return in, fmt.Errorf("generating %s: %w", kind, err)
			}
			secret = shopbuilder.CredentialSecret(shop, kind, data)
			created, err := apply.CreateOnce(ctx, r.Client, secret)
			if err != nil {
				return in, err
			}
			if !created { // created meanwhile by another writer: use theirs
				if secret, err = r.credentialSecret(ctx, shop, kind); err != nil || secret == nil {
					return in, fmt.Errorf("reading Secret %s after a concurrent create: %v", shopbuilder.CredentialSecretName(shop, kind), err)
				}
			} else {
				r.Recorder.Eventf(shop, secret, corev1.EventTypeNormal, "CreatedSecret", "Create",
					"created Secret %s (generated once, never rewritten)", secret.Name)
			}
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

// credentialSecret reads a credentials Secret from the cache, then directly
// from the API server (a Secret restored without the Shop's labels is not in
// the label-selected cache), or returns nil when it does not exist.
func (r *ShopReconciler) credentialSecret(ctx context.Context, shop *shopv1.Shop, kind shopbuilder.CredentialKind) (*corev1.Secret, error) {
	key := client.ObjectKey{Namespace: shop.Namespace, Name: shopbuilder.CredentialSecretName(shop, kind)}
	secret := &corev1.Secret{}
	err := r.Get(ctx, key, secret)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, secret)
	}
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
