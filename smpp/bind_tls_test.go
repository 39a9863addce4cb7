package smpp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/veilgw/veil/configs"
)

// TestClientTLS: the bind's TLS configuration checks the SMSC's name (or
// IP address) from its address, trusts only tls_ca when set, and a tls_ca
// that is missing or holds no certificate stops New with a clear error.
func TestClientTLS(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	conf, err := clientTLS(&configs.CarrierSMPP{Address: "smsc.example.net:3550", TLS: true})
	if err != nil || conf.ServerName != "smsc.example.net" || conf.RootCAs != nil {
		t.Errorf("no tls_ca: %+v, %v; want server name smsc.example.net and the system roots", conf, err)
	}
	if _, err := clientTLS(&configs.CarrierSMPP{Address: "127.0.0.1:3550", TLS: true, TLSCA: empty}); !errors.Is(err, ErrNoCACert) {
		t.Errorf("tls_ca without a certificate: %v, want ErrNoCACert", err)
	}
	e := newEnv(t)
	_, err = New(Options{DB: e.db, Routing: e.rt, Logger: quiet, Carriers: []configs.Carrier{{Name: "c1",
		SMPP: &configs.CarrierSMPP{Address: "127.0.0.1:3550", SystemID: "veil", TLS: true, TLSCA: filepath.Join(dir, "missing.pem")}}}})
	if err == nil || !strings.Contains(err.Error(), "carrier c1") || !strings.Contains(err.Error(), "tls_ca") {
		t.Errorf("New with a missing tls_ca: %v, want an error naming the carrier and tls_ca", err)
	}
}
