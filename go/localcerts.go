//go:build !tailnet_no_localnet

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
)

// What the local tailnet offers for TLS and Funnel.
//
// testcontrol attaches a cert domain (<host>.<MagicDNS domain>) to every
// node whenever it sends a DNS configuration, and grants the capabilities
// in DefaultNodeCapabilities. A real tailnet issues the certificates
// through ACME (Let's Encrypt, with DNS-01 answered via the control
// server); the local tailnet has no ACME server and reaches nothing off
// the machine, so:
//   - ACME requests are pointed (by tailnet.testing, with
//     TS_DEBUG_ACME_DIRECTORY_URL) at /acme/ on the control server, which
//     refuses them with a clear message: listen_tls without a certificate
//     fails with TAILNET_ERR_NO_CERT, offline;
//   - installCert puts a certificate from the local tailnet's own CA into a
//     node's certificate cache (<state dir>/certs), which tsnet serves like
//     one it had fetched. (tailscale accepts a cached certificate from an
//     unknown CA only when the ACME directory is not Let's Encrypt's, as
//     here.)

// applyServices sets the node capabilities and DNS the config asks for.
func (c localnetConfig) applyServices(control *testcontrol.Server) {
	caps := tailcfg.NodeCapMap{tailcfg.CapabilityFileSharing: nil}
	if c.HTTPS == nil || *c.HTTPS {
		caps[tailcfg.CapabilityHTTPS] = nil
	} else {
		control.DNSConfig = nil // testcontrol derives cert domains from any DNS config
	}
	if c.Funnel == nil || *c.Funnel {
		caps[tailcfg.NodeAttrFunnel] = nil
		caps[tailcfg.CapabilityFunnelPorts+"?ports=443,8443,10000"] = nil
	}
	control.DefaultNodeCapabilities = &caps
}

// noACMEMessage is the local "ACME server"'s answer to every request.
const noACMEMessage = "the local tailnet (tailnet.testing) has no ACME server, so it cannot issue " +
	"certificates; LocalTailnet.install_certificate puts one in a node's cache"

// serveNoACME answers every ACME request with an error (see above).
func serveNoACME(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(http.StatusNotFound)
	json.NewEncoder(w).Encode(map[string]string{"type": "tailnet.testing:no-acme-server", "detail": noACMEMessage})
}

// localCA is the local tailnet's certificate authority, made on first use.
type localCA struct {
	once sync.Once
	err  error
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	pem  string
}

func (ca *localCA) init() error {
	ca.once.Do(func() {
		ca.key, ca.err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if ca.err != nil {
			return
		}
		tmpl := certTemplate(pkix.Name{CommonName: "tailnet.testing local CA"}, 90*24*time.Hour)
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		var der []byte
		der, ca.err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &ca.key.PublicKey, ca.key)
		if ca.err != nil {
			return
		}
		ca.cert, ca.err = x509.ParseCertificate(der)
		ca.pem = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	})
	return ca.err
}

func certTemplate(name pkix.Name, lifetime time.Duration) *x509.Certificate {
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      name,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(lifetime),
	}
}

// caPEM is the CA certificate clients should trust.
func (n *localnet) caPEM() (string, error) {
	if err := n.ca.init(); err != nil {
		return "", fmt.Errorf("local CA: %w", err)
	}
	return n.ca.pem, nil
}

// installCert issues a 30-day certificate for domain and writes it where
// a node with state directory dir caches its certificates.
func (n *localnet) installCert(dir, domain string) error {
	if dir == "" || domain == "" || strings.ContainsAny(domain, "/\\") || strings.HasPrefix(domain, ".") {
		return errorf(codeInvalid, "install_cert: need a state directory and a domain name, got %q and %q", dir, domain)
	}
	if err := n.ca.init(); err != nil {
		return fmt.Errorf("local CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := certTemplate(pkix.Name{CommonName: domain}, 30*24*time.Hour)
	tmpl.DNSNames = []string{domain}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, n.ca.cert, &key.PublicKey, n.ca.key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certs := filepath.Join(dir, "certs")
	if err := os.MkdirAll(certs, 0o700); err != nil {
		return errorf(codeInvalid, "install_cert: %v", err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	if err := os.WriteFile(filepath.Join(certs, domain+".key"), keyPEM, 0o600); err != nil {
		return errorf(codeInvalid, "install_cert: %v", err)
	}
	if err := os.WriteFile(filepath.Join(certs, domain+".crt"), certPEM, 0o644); err != nil {
		return errorf(codeInvalid, "install_cert: %v", err)
	}
	return nil
}
