package envfile

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// FormatDotenv writes NAME="value" lines in the double-quoted dotenv
// dialect (python-dotenv, docker compose): backslash, double quote and
// newline are escaped; $ is escaped so no loader expands it.
func FormatDotenv(vars []Var) ([]byte, error) {
	if err := check(vars); err != nil {
		return nil, err
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, `$`, `\$`)
	var b bytes.Buffer
	for _, v := range vars {
		fmt.Fprintf(&b, "%s=\"%s\"\n", v.Name, r.Replace(v.Value))
	}
	return b.Bytes(), nil
}

// FormatJSON writes one JSON object of name → value, in order.
func FormatJSON(vars []Var) ([]byte, error) {
	if err := check(vars); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, v := range vars {
		k, _ := json.Marshal(v.Name)
		val, _ := json.Marshal(v.Value)
		sep := ","
		if i == len(vars)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s: %s%s\n", k, val, sep)
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// FormatGitHub writes the $GITHUB_ENV multi-line syntax, NAME<<DELIM,
// value, DELIM, with a random delimiter that appears in no value, so any
// value (newlines included) survives.
func FormatGitHub(vars []Var) ([]byte, error) {
	if err := check(vars); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	for _, v := range vars {
		delim, err := delimiter(v.Value)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s<<%s\n%s\n%s\n", v.Name, delim, v.Value, delim)
	}
	return b.Bytes(), nil
}

// MaskLines are GitHub Actions workflow commands that hide each value
// in the job log from then on.
func MaskLines(values []string) []byte {
	var b bytes.Buffer
	for _, v := range values {
		for _, line := range strings.Split(v, "\n") {
			if line != "" {
				fmt.Fprintf(&b, "::add-mask::%s\n", line)
			}
		}
	}
	return b.Bytes()
}

func delimiter(value string) (string, error) {
	for range 10 {
		buf := make([]byte, 12)
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		d := "ghadelimiter_" + hex.EncodeToString(buf)
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", fmt.Errorf("no delimiter found for a value")
}

func check(vars []Var) error {
	for _, v := range vars {
		if !validName(v.Name) {
			return fmt.Errorf("invalid variable name %q", v.Name)
		}
		if strings.ContainsRune(v.Value, 0) {
			return fmt.Errorf("value of %s contains a NUL byte", v.Name)
		}
	}
	return nil
}
