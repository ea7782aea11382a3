// Command pki writes the certificates, keys and kubeconfigs of the local
// cluster (hack/local-cluster) into a folder. Files that exist are kept, so a
// second run changes nothing; when the cluster CA is missing every file is
// made anew.
//
//	go run ./hack/local-cluster/cmd/pki -dir $STATE/pki -kubeconfigs $STATE/kubeconfigs \
//	    -node shopstack-node -ip 10.250.0.1 -server https://10.250.0.1:6443
package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 2 * 365 * 24 * time.Hour
)

// client is an identity that gets a client certificate and a kubeconfig.
type client struct {
	file   string // <file>.crt, <file>.key, <file>.kubeconfig
	cn     string
	groups []string
}

func main() {
	dir := flag.String("dir", "", "folder of the certificates and keys")
	kubeconfigs := flag.String("kubeconfigs", "", "folder of the kubeconfigs")
	node := flag.String("node", "shopstack-node", "node name")
	ipFlag := flag.String("ip", "10.250.0.1", "address of the API server and the node")
	serviceIP := flag.String("service-ip", "10.96.0.1", "ClusterIP of the kubernetes Service")
	server := flag.String("server", "", "API server URL written into the kubeconfigs")
	flag.Parse()
	if *dir == "" || *kubeconfigs == "" || *server == "" {
		fmt.Fprintln(os.Stderr, "pki: -dir, -kubeconfigs and -server are required")
		os.Exit(2)
	}
	ip := net.ParseIP(*ipFlag)
	svc := net.ParseIP(*serviceIP)
	if ip == nil || svc == nil {
		fmt.Fprintln(os.Stderr, "pki: -ip and -service-ip must be IP addresses")
		os.Exit(2)
	}
	if err := run(*dir, *kubeconfigs, *node, ip, svc, *server); err != nil {
		fmt.Fprintln(os.Stderr, "pki:", err)
		os.Exit(1)
	}
}

func run(dir, kcDir, node string, ip, serviceIP net.IP, server string) error {
	for _, d := range []string{dir, kcDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	if !exists(filepath.Join(dir, "ca.crt")) || !exists(filepath.Join(dir, "ca.key")) {
		// A new CA invalidates everything signed by the old one.
		for _, d := range []string{dir, kcDir} {
			old, _ := filepath.Glob(filepath.Join(d, "*"))
			for _, f := range old {
				if err := os.RemoveAll(f); err != nil {
					return err
				}
			}
		}
	}
	ca, err := authority(dir, "ca", "shopstack-local-cluster-ca")
	if err != nil {
		return err
	}
	frontProxy, err := authority(dir, "front-proxy-ca", "shopstack-local-cluster-front-proxy-ca")
	if err != nil {
		return err
	}
	if err := serviceAccountKey(dir); err != nil {
		return err
	}

	loopback := net.ParseIP("127.0.0.1")
	servers := []struct {
		file string
		cn   string
		dns  []string
		ips  []net.IP
	}{
		{"apiserver", "kube-apiserver", []string{"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", "localhost", node}, []net.IP{serviceIP, ip, loopback}},
		{"kubelet-serving", "system:node:" + node, []string{node, "localhost"}, []net.IP{ip, loopback}},
		{"metrics-server-serving", "metrics-server", []string{"metrics-server", "metrics-server.kube-system", "metrics-server.kube-system.svc", "metrics-server.kube-system.svc.cluster.local"}, []net.IP{ip}},
	}
	for _, s := range servers {
		if err := leaf(dir, s.file, ca, pkix.Name{CommonName: s.cn}, s.dns, s.ips, x509.ExtKeyUsageServerAuth); err != nil {
			return err
		}
	}
	if err := leaf(dir, "front-proxy-client", frontProxy, pkix.Name{CommonName: "front-proxy-client"}, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}
	if err := leaf(dir, "apiserver-kubelet-client", ca, pkix.Name{CommonName: "kube-apiserver-kubelet-client"}, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
		return err
	}

	clients := []client{
		{"admin", "shopstack-admin", []string{"system:masters"}},
		{"kube-controller-manager", "system:kube-controller-manager", nil},
		{"kube-scheduler", "system:kube-scheduler", nil},
		{"kubelet", "system:node:" + node, []string{"system:nodes"}},
		{"kube-proxy", "system:kube-proxy", nil},
		{"kube-router", "shopstack:kube-router", nil},
		{"metrics-server", "shopstack:metrics-server", nil},
		{"cert-manager", "shopstack:cert-manager", nil},
		{"provisioner", "shopstack:local-provisioner", nil},
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return err
	}
	for _, c := range clients {
		if err := leaf(dir, c.file, ca, pkix.Name{CommonName: c.cn, Organization: c.groups}, nil, nil, x509.ExtKeyUsageClientAuth); err != nil {
			return err
		}
		if err := kubeconfig(filepath.Join(kcDir, c.file+".kubeconfig"), server, caPEM, dir, c); err != nil {
			return err
		}
	}
	return nil
}

type signer struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// authority loads or makes a self-signed CA.
func authority(dir, file, cn string) (signer, error) {
	crtPath, keyPath := filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")
	if exists(crtPath) && exists(keyPath) {
		return load(crtPath, keyPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return signer{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return signer{}, err
	}
	if err := writePair(crtPath, keyPath, der, key); err != nil {
		return signer{}, err
	}
	cert, err := x509.ParseCertificate(der)
	return signer{cert, key}, err
}

// leaf makes a certificate signed by ca unless <file>.crt and <file>.key exist.
func leaf(dir, file string, ca signer, subject pkix.Name, dns []string, ips []net.IP, usage x509.ExtKeyUsage) error {
	crtPath, keyPath := filepath.Join(dir, file+".crt"), filepath.Join(dir, file+".key")
	if exists(crtPath) && exists(keyPath) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return err
	}
	return writePair(crtPath, keyPath, der, key)
}

// serviceAccountKey writes the key pair that signs service account tokens.
func serviceAccountKey(dir string) error {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if exists(keyPath) && exists(pubPath) {
		return nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644)
}

func kubeconfig(path, server string, caPEM []byte, dir string, c client) error {
	crt, err := os.ReadFile(filepath.Join(dir, c.file+".crt"))
	if err != nil {
		return err
	}
	key, err := os.ReadFile(filepath.Join(dir, c.file+".key"))
	if err != nil {
		return err
	}
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["shopstack"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[c.file] = &clientcmdapi.AuthInfo{ClientCertificateData: crt, ClientKeyData: key}
	cfg.Contexts["shopstack"] = &clientcmdapi.Context{Cluster: "shopstack", AuthInfo: c.file}
	cfg.CurrentContext = "shopstack"
	return clientcmd.WriteToFile(*cfg, path)
}

func writePair(crtPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(crtPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func load(crtPath, keyPath string) (signer, error) {
	crtPEM, err := os.ReadFile(crtPath)
	if err != nil {
		return signer{}, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return signer{}, err
	}
	cb, _ := pem.Decode(crtPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return signer{}, fmt.Errorf("%s or %s is not PEM", crtPath, keyPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return signer{}, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return signer{}, err
	}
	return signer{cert, key}, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err)
	}
	return n
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
