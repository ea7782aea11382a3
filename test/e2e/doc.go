// Package e2e is the end-to-end suite: it installs the operator into a real
// cluster the way an admin would (kubectl apply -k config/default), applies a
// Shop and checks, from pods inside the cluster, what the Shop promises:
//
//	0 the operator installs and becomes Available
//	1 the Shop becomes Ready and every service pod answers /readyz
//	2 a customer journey through the real Services (register, token, order)
//	3 NetworkPolicies admit the call graph's flows and nothing else, each side
//	  (the caller's egress, the target's ingress) on its own too; DNS works
//	4 mTLS on the internal port: no certificate or the wrong identity is refused
//	5 the HorizontalPodAutoscaler scales a service under load, unopposed
//	6 deleted pods and children come back; a version rollout drops no order
//	7 evictions respect every PodDisruptionBudget and never block for good
//	8 containment: no way out of the cluster, outside names fail fast, no
//	  service of the node but the API server within a pod's reach
//
// The tests carry the e2e build tag:
//
//	go test -tags e2e ./test/e2e/... -count=1 -timeout 45m -v
//
// The checks stop 15 minutes before -timeout, so that the teardown still runs.
//
// Environment:
//
//	KUBECONFIG            the cluster (default: kubectl's and client-go's usual lookup)
//	E2E_KUBECTL           kubectl binary (default: kubectl on PATH)
//	E2E_VERSION           spec.version of the Shop (default 0.1.0)
//	E2E_NEXT_VERSION      the version rolled out in check 6 (default 0.1.1)
//	E2E_PULL_POLICY       imagePullPolicy of the Shop and the probe pods (default Never)
//	E2E_POSTGRES_IMAGE    Postgres image (default shopstack.local/postgres:15-bookworm)
//	E2E_REDIS_IMAGE       Redis image (default shopstack.local/redis:7.0-bookworm)
//	E2E_PROBE_IMAGE       the probe (./probe) image (default shopstack.local/e2e-probe:dev)
//	E2E_NAMESPACE         the Shop's namespace (default shopstack-e2e); the probe's
//	                      monitoring namespace is <namespace>-monitoring
//	E2E_POD_CIDR          pod range a probe's routes may lead to (default 10.244.0.0/16)
//	E2E_SERVICE_CIDR      Service range a probe's routes may lead to (default 10.96.0.0/16)
//	E2E_SKIP_CONTAINMENT  1: skip check 8 (clusters with a way out, such as kind)
//	E2E_ON_NODE           1: the suite runs on the cluster's only node (make e2e-local), so
//	                      check 8 opens a port on it and expects no pod to reach that port
//	E2E_KEEP              1: leave the operator, the Shop and its namespaces in place
//
// The probe pods run ./probe (one JSON line per command); the suite execs
// into them with kubectl and asserts on what they report.
//
// What the cluster must provide: cert-manager (checked first), resource
// metrics (metrics.k8s.io, for check 5), a default StorageClass, NetworkPolicy
// enforcement, and its DNS server as pods labelled k8s-app=kube-dns in
// kube-system, serving CoreDNS's readiness port 8181: the Shop's default-deny
// NetworkPolicy lets its pods send DNS to those pods only, and check 3 uses
// the readiness port as a destination that only egress rules can refuse. When the Shop does not become Ready, the suite checks
// DNS and Postgres from probe pods inside and outside the Shop's policies and
// says which one fails.
package e2e
