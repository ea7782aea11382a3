package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	storagelisters "k8s.io/client-go/listers/storage/v1"
	"k8s.io/client-go/tools/cache"
)

const testName = "shopstack.dev/local-hostpath"

// newTest returns a provisioner whose listers hold objs and whose client
// starts with the same objects.
func newTest(t *testing.T, objs ...runtime.Object) *provisioner {
	t.Helper()
	claims := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	volumes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	classes := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, o := range objs {
		var err error
		switch o.(type) {
		case *corev1.PersistentVolumeClaim:
			err = claims.Add(o)
		case *corev1.PersistentVolume:
			err = volumes.Add(o)
		case *storagev1.StorageClass:
			err = classes.Add(o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return &provisioner{
		name:    testName,
		dir:     t.TempDir(),
		node:    "shopstack-node",
		client:  fake.NewClientset(objs...),
		claims:  corelisters.NewPersistentVolumeClaimLister(claims),
		volumes: corelisters.NewPersistentVolumeLister(volumes),
		classes: storagelisters.NewStorageClassLister(classes),
	}
}

func class(provisioner string) *storagev1.StorageClass {
	return &storagev1.StorageClass{ObjectMeta: metav1.ObjectMeta{Name: "local"}, Provisioner: provisioner}
}

func claim() *corev1.PersistentVolumeClaim {
	name := "local"
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "data", UID: "u1"},
		Spec: corev1.PersistentVolumeClaimSpec{
			StorageClassName: &name,
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:        corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
}

func TestProvisionsAHostPathVolumeBoundToTheClaim(t *testing.T) {
	p := newTest(t, class(testName), claim())
	if err := p.syncClaim(context.Background(), "ns", "data"); err != nil {
		t.Fatal(err)
	}
	pv, err := p.client.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-u1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(p.dir, "pvc-u1")
	if pv.Spec.HostPath == nil || pv.Spec.HostPath.Path != want {
		t.Fatalf("hostPath = %+v, want %s", pv.Spec.HostPath, want)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != "ns" || ref.Name != "data" || ref.UID != "u1" {
		t.Fatalf("claimRef = %+v", ref)
	}
	if got := pv.Spec.Capacity[corev1.ResourceStorage]; got.String() != "1Gi" {
		t.Fatalf("capacity = %s", got.String())
	}
	if pv.Spec.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete || pv.Annotations[provisionedBy] != testName {
		t.Fatalf("policy %s, annotations %v", pv.Spec.PersistentVolumeReclaimPolicy, pv.Annotations)
	}
	terms := pv.Spec.NodeAffinity.Required.NodeSelectorTerms
	if len(terms) != 1 || terms[0].MatchExpressions[0].Values[0] != "shopstack-node" {
		t.Fatalf("node affinity = %+v", terms)
	}
	st, err := os.Stat(want)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o777 {
		t.Fatalf("directory mode = %v, want 0777", st.Mode().Perm())
	}
}

func TestLeavesClaimsOfOtherProvisionersAlone(t *testing.T) {
	p := newTest(t, class("example.com/other"), claim())
	if err := p.syncClaim(context.Background(), "ns", "data"); err != nil {
		t.Fatal(err)
	}
	list, _ := p.client.CoreV1().PersistentVolumes().List(context.Background(), metav1.ListOptions{})
	if len(list.Items) != 0 {
		t.Fatalf("made %d volumes for another provisioner's claim", len(list.Items))
	}
}

func TestDeletesAReleasedVolumeAndItsDirectory(t *testing.T) {
	p := newTest(t)
	dir := filepath.Join(p.dir, "pvc-u1")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-u1", Annotations: map[string]string{provisionedBy: testName}},
		Spec: corev1.PersistentVolumeSpec{
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: dir}},
		},
		Status: corev1.PersistentVolumeStatus{Phase: corev1.VolumeReleased},
	}
	p2 := newTest(t, pv)
	p2.dir = p.dir
	if err := p2.syncVolume(context.Background(), "pvc-u1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory still there: %v", err)
	}
	if _, err := p2.client.CoreV1().PersistentVolumes().Get(context.Background(), "pvc-u1", metav1.GetOptions{}); err == nil {
		t.Fatal("volume not deleted")
	}
}

func TestRefusesToRemoveAPathOutsideItsFolder(t *testing.T) {
	p := newTest(t)
	outside := t.TempDir()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: "pvc-x"},
		Spec:       corev1.PersistentVolumeSpec{PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: outside}}},
	}
	if err := p.removeDir(pv); err == nil {
		t.Fatal("removeDir accepted a path outside the volumes folder")
	}
	if _, err := os.Stat(outside); err != nil {
		t.Fatalf("the outside path was touched: %v", err)
	}
}
