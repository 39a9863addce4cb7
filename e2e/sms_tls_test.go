package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testPKI is a throwaway CA and a certificate it signed for 127.0.0.1, as
// PEM files in a test's temporary directory.
type testPKI struct {
	caFile, certFile, keyFile string
}

// newTestPKI makes a CA (named name) and a server certificate for
// 127.0.0.1 signed by it.
func newTestPKI(t *testing.T, name string) testPKI {
	t.Helper()
	dir := t.TempDir()
	writePEM := func(file, typ string, der []byte) string {
		t.Helper()
		path := filepath.Join(dir, file)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err = x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "smsc-sim"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return testPKI{
		caFile:   writePEM("ca.pem", "CERTIFICATE", caDER),
		certFile: writePEM("cert.pem", "CERTIFICATE", leafDER),
		keyFile:  writePEM("key.pem", "PRIVATE KEY", keyDER),
	}
}

// carrierBind is the smsc1 entry of GET /v1/carriers.
func carrierBind(t *testing.T, d *daemon) (state, lastError string) {
	t.Helper()
	var list struct {
		Carriers []struct {
			Carrier   string `json:"carrier"`
			State     string `json:"state"`
			LastError string `json:"last_error"`
		} `json:"carriers"`
	}
	d.mustCall("GET", "/v1/carriers", nil, &list, http.StatusOK)
	for _, c := range list.Carriers {
		if c.Carrier == "smsc1" {
			return c.State, c.LastError
		}
	}
	t.Fatalf("smsc1 not in GET /v1/carriers: %+v", list)
	return "", ""
}

// TestSMSTLS: with tls: true and tls_ca naming the CA of the simulator's
// certificate, veild binds over TLS; an MO is relayed as an MT whose
// receipt makes it delivered, and an API message too, all over the TLS
// bind.
func TestSMSTLS(t *testing.T) {
	pki := newTestPKI(t, "veil e2e smsc CA")
	sim := startSMSC(t, smscConfig{TLSCert: pki.certFile, TLSKey: pki.keyFile})
	d, sid := startSMSDaemon(t, sim, ", tls: true, tls_ca: "+quoteYAML(pki.caFile), false)
	// The SMSC counts the bind when it answers; veild says bound once it
	// has read that answer.
	for deadline := time.Now().Add(10 * time.Second); ; {
		st, lastErr := carrierBind(t, d)
		if st == "bound" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bind %q (last_error %q), want bound", st, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}

	text := "over TLS: is the bike still there?"
	if st := sim.MO(t, smscMO{From: callerA, To: proxyP, Text: text}); len(st) != 1 || st[0] != 0 {
		t.Fatalf("MO deliver_sm_resp %v, want [0]", st)
	}
	parts := waitMT(t, sim, calleeB, text, 10*time.Second)
	out := waitOut(t, d, sid, text, "delivered", 10*time.Second, statusIs("delivered"))
	if out.Parts[0].CarrierID != deref(parts[0].sub.MessageID) {
		t.Errorf("part carrier id %q, want the SMSC's %q", out.Parts[0].CarrierID, deref(parts[0].sub.MessageID))
	}

	var sent struct {
		ID string `json:"id"`
	}
	d.mustCall("POST", "/v1/messages", map[string]any{"from": proxyP, "to": calleeB, "body": "TLS notification"}, &sent, http.StatusAccepted)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var m messageRecord
		d.mustCall("GET", "/v1/messages/"+sent.ID, nil, &m, http.StatusOK)
		if m.Status == "delivered" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("API message over TLS: %+v, want delivered", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	st := sim.Stats(t)
	if st.TLSClientErrors != 0 || st.BindsTotal != 1 || st.ReceiptsAcked < 2 {
		t.Errorf("simulator: %d TLS errors, %d binds, %d receipts acked; want 0, 1, 2", st.TLSClientErrors, st.BindsTotal, st.ReceiptsAcked)
	}

	// Stopped, the store is consistent: the delivered parts left no
	// receipt index rows behind (veild check reads them).
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := d.wait(15 * time.Second); code != 0 {
		t.Fatalf("veild exited %d after SIGTERM", code)
	}
	if code, out := runVeild(t, "check", "-config", d.config); code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("veild check = %d:\n%s", code, out)
	}
}

// TestSMSTLSWrongCA: when the simulator's certificate does not chain to
// tls_ca, the handshake fails, nothing binds, GET /v1/carriers shows the
// bind down with the certificate error in last_error, and veild keeps
// running (and retrying).
func TestSMSTLSWrongCA(t *testing.T) {
	pki := newTestPKI(t, "veil e2e smsc CA")
	other := newTestPKI(t, "some other CA")
	sim := startSMSC(t, smscConfig{TLSCert: pki.certFile, TLSKey: pki.keyFile})
	d, _ := startSMSDaemonOpts(t, sim, smsDaemonOpts{SMPP: ", tls: true, tls_ca: " + quoteYAML(other.caFile), NoWaitBind: true})
	sim.WaitStats(t, 15*time.Second, "two refused handshakes", func(s smscStats) bool { return s.TLSClientErrors >= 2 })
	st, lastErr := carrierBind(t, d)
	t.Logf("bind %s, last_error: %s", st, lastErr)
	if st == "bound" || !strings.Contains(lastErr, "certificate") {
		t.Errorf("bind %q last_error %q, want not bound and a certificate error", st, lastErr)
	}
	if s := sim.Stats(t); s.BindsTotal != 0 {
		t.Errorf("%d binds through a certificate veild must not trust", s.BindsTotal)
	}
	if v := metricValue(t, d, `veil_smpp_bind_up{carrier="smsc1"}`); v != 0 {
		t.Errorf("veil_smpp_bind_up = %v, want 0", v)
	}
	select {
	case <-d.exited:
		t.Fatalf("veild exited: %v\n%s", d.err, d.logs())
	default:
	}
	d.mustCall("GET", "/healthz", nil, nil, http.StatusOK)
}

// quoteYAML quotes a path for a YAML flow map.
func quoteYAML(s string) string {
	return `"` + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), `"`, `\"`) + `"`
}
