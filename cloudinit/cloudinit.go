// Package cloudinit renders the user-data (a #cloud-config document) that turns
// a fresh Ubuntu 24.04 EC2 instance into an MLflow tracking server: swap, a
// venv with MLflow installed from a hash-checked lock, basic auth, a systemd
// unit, and the allowed-hosts list learned from IMDSv2 at every start. The
// templates live in package templates. UserData gzips the document for EC2.
package cloudinit

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"text/template"

	"github.com/mlstack/mlstack/provision/region"
	"github.com/mlstack/mlstack/templates"
)

// DefaultMLflowVersion is the MLflow release installed when Params.MLflowVersion
// is empty: the version templates/mlflow-lock.txt pins (scripts/lock.sh reads
// it from here). Other versions are installed by version pins, unchecked.
const DefaultMLflowVersion = "3.17.2"

// MaxUserDataSize is EC2's limit on raw (before base64) user-data; UserData's
// gzip-compressed output must fit.
const MaxUserDataSize = 16 * 1024

// minMLflowVersion is the first release with --allowed-hosts (MLFLOW_SERVER_ALLOWED_HOSTS).
var minMLflowVersion = [3]int{3, 5, 0}

// Params are the per-stack values that go into the user-data. None is
// secret: the admin password and the Flask secret key are SSM SecureString
// parameters under ParamPath, which the server reads with its role.
type Params struct {
	Stack          string // stack name, e.g. "demo"
	Bucket         string // S3 artifact bucket name
	Region         string // AWS region of the bucket
	MLflowVersion  string // pinned version, e.g. "3.17.2"; empty means DefaultMLflowVersion; must be >= 3.5.0
	AdminUsername  string // basic-auth admin user, e.g. "admin"
	S3EndpointURL  string // optional non-AWS S3 endpoint; sets MLFLOW_S3_ENDPOINT_URL and AWS_ENDPOINT_URL_S3
	SSMEndpointURL string // optional non-AWS SSM endpoint (an emulator); sets AWS_ENDPOINT_URL_SSM
	Arch           string // the instance's architecture, ArchX8664 or ArchAarch64; empty means ArchX8664
	// Database holds the tracking and auth data: "" is sqlite on the
	// instance, DatabasePostgres a PostgreSQL (RDS) whose address and
	// password the server reads from SSM (see mlstack_keys.py).
	Database string
}

// DatabasePostgres is Params.Database for MLflow's data in PostgreSQL.
const DatabasePostgres = "postgres"

// ParamPath is the SSM path of the stack's parameters: /mlstack/STACK/.
func (p Params) ParamPath() string { return "/mlstack/" + p.Stack + "/" }

// ErrInvalidParams is wrapped by every error Validate returns.
var ErrInvalidParams = errors.New("invalid cloud-init parameters")

var (
	stackRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	bucketRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	ipv4RE     = regexp.MustCompile(`^\d+\.\d+\.\d+\.\d+$`)
	versionRE  = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)
	usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)
)

// ValidUserName says whether name is a login MLflow and every env format
// take without quoting trouble: 1-64 of A-Z a-z 0-9 . _ @ -, starting
// with a letter or digit. The admin's and every user's follow it.
func ValidUserName(name string) bool { return usernameRE.MatchString(name) }

// maxURLLen keeps endpoint URLs far below what the user-data can hold.
const maxURLLen = 256

// Validate reports every invalid field, each error naming the field. Error
// texts never contain the secret values.
func (p Params) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s", ErrInvalidParams, field, fmt.Sprintf(format, args...)))
	}

	if !stackRE.MatchString(p.Stack) {
		bad("Stack", "%q must be 1-63 lowercase letters, digits or hyphens, starting and ending with a letter or digit", p.Stack)
	}
	switch {
	case !bucketRE.MatchString(p.Bucket) || strings.Contains(p.Bucket, ".."):
		bad("Bucket", "%q is not a valid S3 bucket name (3-63 of a-z 0-9 . -, starting and ending with a letter or digit)", p.Bucket)
	case ipv4RE.MatchString(p.Bucket):
		bad("Bucket", "%q must not look like an IP address", p.Bucket)
	}
	if !region.Valid(p.Region) {
		bad("Region", "%q is not an AWS region name like us-east-1", p.Region)
	}
	if err := checkVersion(p.version()); err != nil {
		bad("MLflowVersion", "%v", err)
	}
	if a := p.arch(); a != ArchX8664 && a != ArchAarch64 {
		bad("Arch", "%q must be %s or %s", a, ArchX8664, ArchAarch64)
	}
	if p.Database != "" && p.Database != DatabasePostgres {
		bad("Database", "%q must be empty (sqlite on the instance) or %s", p.Database, DatabasePostgres)
	}
	if !usernameRE.MatchString(p.AdminUsername) {
		bad("AdminUsername", "%q must be 1-64 of A-Z a-z 0-9 . _ @ -, starting with a letter or digit", p.AdminUsername)
	}
	for field, u := range map[string]string{"S3EndpointURL": p.S3EndpointURL, "SSMEndpointURL": p.SSMEndpointURL} {
		if u == "" {
			continue
		}
		if err := checkEndpoint(u); err != nil {
			bad(field, "%v", err)
		}
	}
	return errors.Join(errs...)
}

func (p Params) version() string {
	if p.MLflowVersion == "" {
		return DefaultMLflowVersion
	}
	return p.MLflowVersion
}

func (p Params) arch() string {
	if p.Arch == "" {
		return ArchX8664
	}
	return p.Arch
}

// Locked reports whether p's MLflow version is the one the lock pins, so the
// instance installs it hash-checked and starts it the tested way.
func (p Params) Locked() bool {
	return p.version() == DefaultMLflowVersion
}

func checkVersion(v string) error {
	m := versionRE.FindStringSubmatch(v)
	if m == nil {
		return fmt.Errorf("%q must be a release version like %s", v, DefaultMLflowVersion)
	}
	for i := range 3 {
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return fmt.Errorf("%q: %w", v, err)
		}
		if n != minMLflowVersion[i] {
			if n < minMLflowVersion[i] {
				return fmt.Errorf("%q is older than 3.5.0, the first release with --allowed-hosts", v)
			}
			break
		}
	}
	return nil
}

func checkEndpoint(s string) error {
	if len(s) > maxURLLen {
		return fmt.Errorf("must be at most %d characters", maxURLLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= 0x20 || s[i] > 0x7e {
			return errors.New("must contain only printable ASCII characters without spaces")
		}
	}
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the input; the URL may hold credentials, so keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("not a URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must be an http or https URL")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	// Credentials in the URL would land in the user-data, which must hold no keys.
	if u.User != nil {
		return errors.New("must not contain user information")
	}
	return nil
}

// Render validates p and returns the #cloud-config document, uncompressed.
func Render(p Params) ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	p.MLflowVersion, p.Arch = p.version(), p.arch()
	boot, err := Bootstrap(p)
	if err != nil {
		return nil, err
	}
	lock := boot[0]

	funcs := template.FuncMap{
		"yamlText":       yamlText,
		"yamlQuote":      yamlQuote,
		"envq":           envQuote,
		"lockURL":        func() string { return p.objectURL(lock.Key) },
		"lockSHA":        func() string { return lock.SHA256 },
		"capabilityLine": func() string { return capabilityLine(p) },
	}
	// file renders another embedded file with the same parameters, so each
	// file on the instance is one readable template.
	funcs["file"] = func(name string) (string, error) {
		out, err := renderFile(name, p, funcs)
		return stripComments(out), err
	}
	out, err := renderFile("cloud-config.yaml.tmpl", p, funcs)
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(out, "#cloud-config\n") {
		return nil, errors.New("cloudinit: rendered user-data does not start with #cloud-config")
	}
	return []byte(out), nil
}

// Object is a file the instance fetches from the stack bucket at first
// boot (mlstack_s3get.py): what does not fit the user-data, pinned there by
// its sha256.
type Object struct {
	Key    string // below the bucket, under bootstrap/, named by content
	Body   []byte
	SHA256 string // hex
}

// Bootstrap is what mlstack puts in the stack bucket before it launches an
// instance with p's user-data: the install lock for p's architecture.
func Bootstrap(p Params) ([]Object, error) {
	lock, err := lockFor(p.arch())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(lock))
	h := hex.EncodeToString(sum[:])
	return []Object{{Key: "bootstrap/mlflow-lock-" + p.arch() + "-" + h[:16] + ".txt", Body: []byte(lock), SHA256: h}}, nil
}

// objectURL is where the instance reads key of the stack bucket: AWS's
// virtual-hosted address in the region's partition, or path-style below an
// S3 endpoint override (emulators).
func (p Params) objectURL(key string) string {
	if p.S3EndpointURL != "" {
		return strings.TrimRight(p.S3EndpointURL, "/") + "/" + p.Bucket + "/" + key
	}
	return "https://" + p.Bucket + ".s3." + p.Region + "." + region.Of(p.Region).DNSSuffix + "/" + key
}

// UserData renders p and gzip-compresses it, as EC2 gets it: cloud-init
// unpacks gzip user-data itself, and EC2's 16 KB limit applies to the
// compressed bytes. The output is the same for the same p.
func UserData(p Params) ([]byte, error) {
	doc, err := Render(p)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return nil, fmt.Errorf("cloudinit: gzip: %w", err)
	}
	if _, err := zw.Write(doc); err != nil {
		return nil, fmt.Errorf("cloudinit: gzip: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("cloudinit: gzip: %w", err)
	}
	if b.Len() > MaxUserDataSize {
		return nil, fmt.Errorf("cloudinit: compressed user-data is %d bytes, over EC2's %d-byte limit", b.Len(), MaxUserDataSize)
	}
	return b.Bytes(), nil
}

// Decode returns the cloud-config document in user-data as EC2 holds it:
// gzip-compressed user-data is unpacked, anything else returned as it is.
func Decode(userData []byte) ([]byte, error) {
	if !bytes.HasPrefix(userData, []byte{0x1f, 0x8b}) {
		return userData, nil
	}
	zr, err := gzip.NewReader(bytes.NewReader(userData))
	if err != nil {
		return nil, fmt.Errorf("cloudinit: user-data: %w", err)
	}
	defer zr.Close()
	doc, err := io.ReadAll(io.LimitReader(zr, maxDecodedSize+1))
	if err != nil {
		return nil, fmt.Errorf("cloudinit: user-data: %w", err)
	}
	if len(doc) > maxDecodedSize {
		return nil, fmt.Errorf("cloudinit: user-data unpacks to more than %d bytes", maxDecodedSize)
	}
	return doc, nil
}

// maxDecodedSize bounds what Decode unpacks (a rendered document is ~30 KB).
const maxDecodedSize = 1 << 20

// renderFile executes templates/name when it ends in .tmpl and returns other files verbatim.
func renderFile(name string, p Params, funcs template.FuncMap) (string, error) {
	src, err := templates.FS.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("cloudinit: read template %s: %w", name, err)
	}
	if !strings.HasSuffix(name, ".tmpl") {
		return string(src), nil
	}
	t, err := template.New(name).Funcs(funcs).Option("missingkey=error").Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("cloudinit: parse template %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		return "", fmt.Errorf("cloudinit: render %s: %w", name, err)
	}
	return b.String(), nil
}

// stripComments drops the comment lines of a script or unit on its way
// into the user-data, which EC2 caps at 16 KB: they are for readers of the
// repository. The first line (#! or #cloud-config) stays, and so do
// shellcheck directives. Every file that goes through it has no line
// starting with "#" inside a string or here-document that matters.
func stripComments(s string) string {
	var b strings.Builder
	first := true
	for line := range strings.Lines(s) {
		t := strings.TrimLeft(line, " \t")
		if !first && strings.HasPrefix(t, "#") && !strings.HasPrefix(t, "# shellcheck ") {
			continue
		}
		first = false
		b.WriteString(line)
	}
	return b.String()
}

// yamlText renders s as a YAML scalar for a mapping value whose content lines
// are indented by indent spaces: a literal block when s survives one
// unchanged (readable golden file), otherwise a double-quoted string.
func yamlText(indent int, s string) string {
	if !blockSafe(s) {
		return yamlQuote(s)
	}
	pad := strings.Repeat(" ", indent)
	var b strings.Builder
	b.WriteString("|")
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		b.WriteString("\n")
		if line != "" {
			b.WriteString(pad + line)
		}
	}
	return b.String()
}

// blockSafe reports whether a "|" block scalar reproduces s exactly: printable
// ASCII lines, exactly one trailing newline (clip chomping), and a first line
// that does not start with a space (it would be taken as indentation).
func blockSafe(s string) bool {
	if !strings.HasSuffix(s, "\n") || strings.HasSuffix(s, "\n\n") ||
		strings.HasPrefix(s, "\n") || strings.HasPrefix(s, " ") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c != '\n' && (c < 0x20 || c > 0x7e) {
			return false
		}
	}
	return true
}

// yamlQuote renders s as a YAML double-quoted scalar that any YAML 1.1 or 1.2
// parser reads back exactly: only printable ASCII stays literal.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// envQuote double-quotes a value for a systemd EnvironmentFile. Inside double
// quotes systemd unescapes exactly \" \\ \` \$ and expands nothing.
func envQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		if strings.ContainsRune("\"\\`$", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
