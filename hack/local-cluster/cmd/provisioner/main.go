// Command provisioner is the dynamic volume provisioner of the local
// cluster's default StorageClass. For each pending claim of a class whose
// provisioner is -name it makes a directory <dir>/<pv-name> (mode 0777) and a
// hostPath PersistentVolume bound to the claim and pinned to the node. When a
// volume with reclaim policy Delete is released it removes the directory and
// the volume. A claim asking for more than its volume holds gets the bigger
// size written on both (a hostPath directory has no size of its own).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

func main() {
	var p provisioner
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig file")
	flag.StringVar(&p.name, "name", "shopstack.dev/local-hostpath", "provisioner name, as in StorageClass.provisioner")
	flag.StringVar(&p.dir, "dir", "", "folder that holds one directory per volume")
	flag.StringVar(&p.node, "node", "", "node the volumes are pinned to")
	workers := flag.Int("workers", 2, "parallel workers")
	klog.InitFlags(nil)
	flag.Parse()
	if p.dir == "" || p.node == "" {
		fmt.Fprintln(os.Stderr, "provisioner: -dir and -node are required")
		os.Exit(2)
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		klog.Fatal(err)
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		klog.Fatal(err)
	}
	p.client, err = kubernetes.NewForConfig(cfg)
	if err != nil {
		klog.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.run(ctx, *workers); err != nil {
		klog.Fatal(err)
	}
}

// run watches claims, volumes and classes until ctx ends.
func (p *provisioner) run(ctx context.Context, workers int) error {
	factory := informers.NewSharedInformerFactory(p.client, 5*time.Minute)
	claims := factory.Core().V1().PersistentVolumeClaims()
	volumes := factory.Core().V1().PersistentVolumes()
	classes := factory.Storage().V1().StorageClasses()
	p.claims, p.volumes, p.classes = claims.Lister(), volumes.Lister(), classes.Lister()
	p.queue = workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[key]())
	defer p.queue.ShutDown()

	onClaim := func(obj any) {
		if c, ok := obj.(*corev1.PersistentVolumeClaim); ok {
			p.queue.Add(key{kind: "claim", namespace: c.Namespace, name: c.Name})
		}
	}
	onVolume := func(obj any) {
		if v, ok := obj.(*corev1.PersistentVolume); ok {
			p.queue.Add(key{kind: "volume", name: v.Name})
		}
	}
	if _, err := claims.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onClaim, UpdateFunc: func(_, o any) { onClaim(o) },
	}); err != nil {
		return err
	}
	if _, err := volumes.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onVolume, UpdateFunc: func(_, o any) { onVolume(o) },
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if v, ok := obj.(*corev1.PersistentVolume); ok {
				p.forget(v)
			}
		},
	}); err != nil {
		return err
	}
	classes.Informer() // the claims' classes are read from the lister
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("cache of %v did not sync", typ)
		}
	}
	klog.InfoS("provisioner started", "name", p.name, "dir", p.dir, "node", p.node)
	for range workers {
		go p.work(ctx)
	}
	<-ctx.Done()
	return nil
}

func (p *provisioner) work(ctx context.Context) {
	for {
		k, shutdown := p.queue.Get()
		if shutdown {
			return
		}
		var err error
		if k.kind == "claim" {
			err = p.syncClaim(ctx, k.namespace, k.name)
		} else {
			err = p.syncVolume(ctx, k.name)
		}
		if err != nil {
			klog.ErrorS(err, "sync failed, retrying", "kind", k.kind, "namespace", k.namespace, "name", k.name)
			p.queue.AddRateLimited(k)
		} else {
			p.queue.Forget(k)
		}
		p.queue.Done(k)
	}
}
