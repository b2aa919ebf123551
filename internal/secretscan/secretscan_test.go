package secretscan

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/mlstack/mlstack/provision/local"
)

// The secrets the tests plant: the kinds mlstack makes.
var planted = []struct{ what, value string }{
	{"AWS secret access key", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"},
	{"MLflow password", "Jx7kPq2mWv9RtL4nYc8BzA3f"},
	{"binary key", string([]byte{0xfa, 0xfb, 0xfc, 0xfd, 0x00, 0x01, 0x3e, 0x3f, 0xbe, 0xbf, 0xfe, 0xff, 0x10, 0x20, 0x30, 0x40, 0x50})},
	{"short secret", "pw-9x4kLm"}, // under PrefixMinLen: found whole, never cut short
}

// plantings are the forms a secret can be printed in, each built with the
// standard library (not with the scanner's own code) and set in text.
func plantings(secret string) map[string]string {
	b64 := func(enc *base64.Encoding, lead int) string {
		blob := append([]byte(strings.Repeat("\x07", lead)), secret...)
		return enc.EncodeToString(append(blob, "-and-the-rest"...))
	}
	out := map[string]string{
		"as stored":          "password is " + secret + ".",
		"base64 std, padded": "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(secret)) + "\n",
		"base64 std, raw":    "token=" + base64.RawStdEncoding.EncodeToString([]byte(secret)) + "&x=1",
		"base64url, padded":  "t=" + base64.URLEncoding.EncodeToString([]byte(secret)),
		"base64url, raw":     "t=" + base64.RawURLEncoding.EncodeToString([]byte(secret)) + ";",
		"URL query escape":   "https://example.com/?pw=" + url.QueryEscape(secret) + "&a=b",
		"URL path escape":    "https://example.com/" + url.PathEscape(secret) + "/x",
		"hex":                "key: " + hex.EncodeToString([]byte(secret)),
		"hex, upper case":    "KEY=" + strings.ToUpper(hex.EncodeToString([]byte(secret))),
	}
	for lead := range 3 {
		out[fmt.Sprintf("in a base64 std blob at offset %d", lead)] = "data: " + b64(base64.StdEncoding, lead)
		out[fmt.Sprintf("in a base64url blob at offset %d", lead)] = "data: " + b64(base64.RawURLEncoding, lead)
	}
	if len(secret) >= PrefixMinLen {
		out["cut short to PrefixLen"] = "pw " + secret[:PrefixLen] + "…"
		out["cut short by one"] = "pw " + secret[:len(secret)-1] + "\n"
	}
	return out
}

// TestFindsEveryForm plants each form of each secret in an output and
// expects the scanner to find it, naming the secret and never showing it.
func TestFindsEveryForm(t *testing.T) {
	for _, p := range planted {
		sc := New()
		if !sc.AddString(p.what, p.value) {
			t.Fatalf("%s not taken", p.what)
		}
		for form, text := range plantings(p.value) {
			text = "some output before\n" + text + "\nand after\n"
			got := sc.Scan("out", []byte(text))
			if len(got) == 0 {
				t.Errorf("%s %s: not found in %q", p.what, form, text)
				continue
			}
			for _, f := range got {
				if f.Secret != p.what || f.Where != "out" || f.Line != 2 || strings.Contains(f.String(), p.value) {
					t.Errorf("%s %s: finding %+v", p.what, form, f)
				}
			}
			// A cut-short planting is reported so; any other is recognised
			// whole (a prefix may be reported besides, when the form keeps
			// the first PrefixLen bytes as they are).
			wantCut := strings.HasPrefix(form, "cut short")
			if !slices.ContainsFunc(got, func(f Finding) bool { return strings.HasPrefix(f.Variant, "cut short") == wantCut }) {
				t.Errorf("%s %s: reported as %v", p.what, form, got)
			}
		}
	}
}

// TestShortSecrets: under MinLen a secret is refused; under PrefixMinLen
// it is found whole but not by a prefix.
func TestShortSecrets(t *testing.T) {
	sc := New()
	if sc.AddString("tiny", "1234567") || sc.Len() != 0 {
		t.Error("a secret shorter than MinLen was taken")
	}
	sc.AddString("short", "pw-9x4kLm")
	if got := sc.Scan("out", []byte("pw-9x4kL is not the password")); len(got) != 0 {
		t.Errorf("a short secret was found cut short: %v", got)
	}
}

// TestNoFalsePositives: secrets are not found in text that does not hold
// them: this repository's sources, and another key's PEM file, public key
// and known_hosts line (OpenSSH key files share their first bytes).
func TestNoFalsePositives(t *testing.T) {
	// Fresh secrets of each kind: the repository holds the planted ones.
	sc := New()
	for i, n := range []int{30, 18, 32} {
		b := make([]byte, n)
		if _, err := rand.Read(b); err != nil {
			t.Fatal(err)
		}
		sc.AddString(fmt.Sprint("base64 secret ", i), base64.StdEncoding.EncodeToString(b))
		sc.Add(fmt.Sprint("binary secret ", i), b)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sc.Add("SSH private key", priv.Seed())
	otherPEM, otherPub, err := local.NewSSHKey("mlstack-other")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Scan("other key", append(otherPEM, otherPub...)); len(got) != 0 {
		t.Errorf("found in another key's files: %v", got)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	own := "ec2-1-2-3-4.compute.amazonaws.com,1.2.3.4 " + string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	if got := sc.Scan("known_hosts", []byte(own)); len(got) != 0 {
		t.Errorf("found in the key's own public half: %v", got)
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	skip := func(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") } // .git, .cache (the venvs)
	findings, files, err := sc.ScanPaths([]string{repo}, skip)
	if err != nil {
		t.Fatal(err)
	}
	if files < 50 || len(findings) != 0 {
		t.Errorf("scanned %d files of this repository: %v", files, findings)
	}
}

// TestPEMFileFound: a printed private key file is found by its seed.
func TestPEMFileFound(t *testing.T) {
	pemBytes, _, err := local.NewSSHKey("mlstack-demo")
	if err != nil {
		t.Fatal(err)
	}
	// Go writes 64 characters a line, OpenSSH 70: the seed's base64 spans
	// a line break in one of them.
	block, _ := pem.Decode(pemBytes)
	wrap := func(width int) string {
		b64 := base64.StdEncoding.EncodeToString(block.Bytes)
		var lines []string
		for len(b64) > width {
			lines, b64 = append(lines, b64[:width]), b64[width:]
		}
		return "-----BEGIN OPENSSH PRIVATE KEY-----\n" + strings.Join(append(lines, b64), "\n") + "\n-----END OPENSSH PRIVATE KEY-----\n"
	}
	for _, width := range []int{64, 70} {
		sc := New()
		sc.AddPrivateKey("id_ed25519", []byte(wrap(width)))
		for _, text := range []string{wrap(64), wrap(70), strings.ReplaceAll(wrap(width), "\n", "\r\n")} {
			if got := sc.Scan("cat id_ed25519", []byte(text)); len(got) == 0 {
				t.Errorf("key file with %d-character lines: the printed file is not found:\n%s", width, text)
			}
		}
	}
}

// TestTLSKeyNotItsCertificate: a P-256 TLS key (PKCS#8, as the instance
// makes it) is found printed, but not in its own self-signed certificate,
// which holds its public half: keys of many draws, since whether a line
// of the key's PEM shows in the certificate depends on the key.
func TestTLSKeyNotItsCertificate(t *testing.T) {
	for i := range 30 {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(t, err)
		der, err := x509.MarshalPKCS8PrivateKey(key)
		must(t, err)
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 1)), Subject: pkix.Name{CommonName: "ec2-1-2-3-4.example"},
			NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"ec2-1-2-3-4.example"}}
		certDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
		must(t, err)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER})
		sc := New()
		sc.AddPrivateKey("server.key", keyPEM)
		if got := sc.Scan("server.crt", certPEM); len(got) > 0 {
			t.Errorf("draw %d: the certificate is reported as the key: %v", i, got)
		}
		scalar, err := key.Bytes()
		must(t, err)
		if len(sc.Scan("cat server.key", keyPEM)) == 0 || len(sc.Scan("raw", scalar)) == 0 {
			t.Errorf("draw %d: the printed key or its private scalar is not found", i)
		}
	}
}

// TestStateDir: the secrets come from state.json and the login key; every
// other file (the pinned host key and certificate are public) is returned
// for scanning, env is neither.
func TestStateDir(t *testing.T) {
	root := t.TempDir()
	d := local.StackDir(root, "demo")
	st := &local.Secrets{Stack: "demo", SecretAccessKey: planted[0].value, MLflowPassword: planted[1].value, FlaskSecretKey: "flask-key-0123456789abcdef",
		Users: map[string]string{"alice": "alice-password-0123456789"}}
	must(t, d.Save(st))
	pemBytes, pub, err := local.NewSSHKey("mlstack-demo")
	must(t, err)
	must(t, d.SaveSSHKey(pemBytes))
	_, hostLine, err := local.NewSSHKey("host")
	must(t, err)
	hostPub, _, _, _, err := ssh.ParseAuthorizedKey(hostLine)
	must(t, err)
	must(t, d.SavePinnedHostKey(hostPub))
	must(t, d.SaveServerCert([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")))
	_, err = d.WriteKnownHosts([]string{"ec2-1-2-3-4.compute.amazonaws.com"}, hostPub)
	must(t, err)
	must(t, d.WriteEnv(nil))
	lock := filepath.Join(root, ".demo.lock")
	must(t, os.WriteFile(lock, nil, 0o600))
	for name, path := range map[string]string{"env": d.EnvFile(), "id_ed25519": d.SSHKeyFile()} {
		if filepath.Base(path) != name || !SecretFiles[name] {
			t.Errorf("SecretFiles and package local disagree on %s (%s)", name, path)
		}
	}

	sc := New()
	others, err := sc.AddStateDir(root)
	must(t, err)
	if want := []string{lock, d.KnownHostsFile(), d.HostKeyFile(), d.ServerCertFile()}; strings.Join(others, " ") != strings.Join(sorted(want), " ") {
		t.Errorf("files to scan %v, want %v", others, want)
	}
	if sc.Len() < 4 {
		t.Errorf("%d secrets, want 3 from state.json and the login key", sc.Len())
	}
	for _, text := range [][]byte{[]byte(planted[0].value), []byte("flask-key-0123"), []byte("alice-password-01234"), pemBytes} {
		if len(sc.Scan("x", text)) == 0 {
			t.Errorf("not found: a secret of the state dir (%.20q…)", text)
		}
	}
	if got := sc.Scan("public", append(pub, hostLine...)); len(got) != 0 {
		t.Errorf("public keys found as secrets: %v", got)
	}
	if others, err := New().AddStateDir(filepath.Join(root, "missing")); err != nil || len(others) != 0 {
		t.Errorf("missing state dir: %v, %v", others, err)
	}
	must(t, os.WriteFile(filepath.Join(d.Path(), "state.json"), []byte("{"), 0o600))
	if _, err := New().AddStateDir(root); err == nil {
		t.Error("a state.json that cannot be read must be an error: its secrets would go unscanned")
	}
}

func TestScanPaths(t *testing.T) {
	dir := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(dir, "var", "log"), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, "var", "log", "cloud-init-output.log"), []byte("ok\nset password "+planted[1].value+"\n"), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "user-data"), []byte(planted[1].value), 0o600))
	must(t, os.WriteFile(filepath.Join(dir, "clean.log"), []byte("nothing here\n"), 0o600))
	sc := New()
	sc.AddString("MLflow password", planted[1].value)
	got, files, err := sc.ScanPaths([]string{dir}, func(p string) bool { return filepath.Base(p) == "user-data" })
	must(t, err)
	if files != 2 || len(got) != 1 || got[0].Where != filepath.Join(dir, "var", "log", "cloud-init-output.log") || got[0].Line != 2 {
		t.Errorf("%d files, findings %v", files, got)
	}
	if _, _, err := sc.ScanPaths([]string{filepath.Join(dir, "missing")}, nil); err == nil {
		t.Error("a path that does not exist must be an error, not a clean scan")
	}
}

// TestScanIsFast: a whole test run's outputs (tens of MB) against
// thousands of secrets take seconds, not minutes.
func TestScanIsFast(t *testing.T) {
	sc := New()
	rng := mrand.New(mrand.NewSource(1))
	for i := range 2000 {
		b := make([]byte, 30)
		rng.Read(b)
		sc.AddString(fmt.Sprint("secret ", i), base64.RawStdEncoding.EncodeToString(b))
	}
	text := make([]byte, 16<<20)
	rng.Read(text)
	printable := []byte(base64.StdEncoding.EncodeToString(text))[:len(text)] // worst case: text made of the secrets' alphabet
	start := time.Now()
	if got := sc.Scan("16 MiB", printable); len(got) != 0 {
		t.Errorf("random text holds secrets: %v", got[:1])
	}
	took := time.Since(start)
	t.Logf("16 MiB against %d secrets (%d patterns): %s", sc.Len(), sc.Patterns(), took)
	if took > 20*time.Second { // about 0.3 s plain, 10 times that under -race
		t.Errorf("scanning 16 MiB took %s", took)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}
