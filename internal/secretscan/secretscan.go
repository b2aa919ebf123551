// Package secretscan finds secrets in what a program printed or wrote: as
// stored, and in the forms a careless line of code prints them in. The
// tests scan every output of a run with it (cmd/mlstack's TestMain), and
// scripts/secretscan points it at files and directories (the boot test's
// logs).
//
// A secret is found as stored; cut short (any prefix of PrefixLen bytes or
// more, for secrets of PrefixMinLen bytes or more); base64-encoded with
// the standard or the URL alphabet, padded or not, alone or at any of the
// three byte alignments inside a longer encoded blob; URL-encoded (query
// or path escaping); and hex-encoded (lower or upper case).
package secretscan

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
)

const (
	// MinLen is the shortest secret the scanner takes: a shorter one
	// would turn up in ordinary text by chance.
	MinLen = 8
	// PrefixMinLen is the length from which a secret is also found cut
	// short, by any prefix of at least PrefixLen bytes. Random secrets of
	// this length never share PrefixLen bytes with ordinary text.
	PrefixMinLen = 16
	PrefixLen    = 12

	keyLen     = 8  // patterns are indexed by their first keyLen bytes
	filterBits = 20 // 2^20-bit filter of those keys, so most bytes cost one lookup
)

// Finding is one secret in one output. It never holds the secret.
type Finding struct {
	Secret  string // what the secret is, as given to Add
	Variant string // how it appeared: "as stored", "cut short (first 14 of 40 bytes)", "base64url (offset 2)", …
	Where   string // the output or file
	Line    int    // line of the first occurrence, from 1
}

func (f Finding) String() string {
	return fmt.Sprintf("%s, line %d: %s, %s", f.Where, f.Line, f.Secret, f.Variant)
}

// Scanner holds secrets and finds them. Add and Scan must not run at the
// same time.
type Scanner struct {
	names  []string         // secret → what it is
	values map[string]int   // secret value → its index, to add each once
	pats   []pattern        // what is searched for
	index  map[uint64][]int // first keyLen bytes of a pattern → patterns
	filter [1 << (filterBits - 6)]uint64
}

type pattern struct {
	text    []byte
	secret  int
	variant string
	whole   []byte // the secret, when text is its prefix: tells as stored from cut short
}

// New returns an empty scanner.
func New() *Scanner {
	return &Scanner{values: map[string]int{}, index: map[uint64][]int{}}
}

// Len is the number of secrets added.
func (s *Scanner) Len() int { return len(s.names) }

// Patterns is the number of strings searched for (every form of every secret).
func (s *Scanner) Patterns() int { return len(s.pats) }

// AddString adds a secret; see Add.
func (s *Scanner) AddString(what, value string) bool { return s.Add(what, []byte(value)) }

// Add adds a secret that what names in findings. It reports false, adding
// nothing, for a secret shorter than MinLen. A value added again keeps its
// first name.
func (s *Scanner) Add(what string, value []byte) bool {
	if len(value) < MinLen {
		return false
	}
	if _, ok := s.values[string(value)]; ok {
		return true
	}
	id := len(s.names)
	s.names = append(s.names, what)
	s.values[string(value)] = id
	for _, v := range variants(value) {
		s.addPattern(pattern{text: []byte(v.text), secret: id, variant: v.name, whole: v.whole})
	}
	return true
}

func (s *Scanner) addPattern(p pattern) {
	if len(p.text) < keyLen {
		return
	}
	k := binary.LittleEndian.Uint64(p.text)
	s.index[k] = append(s.index[k], len(s.pats))
	s.pats = append(s.pats, p)
	h := slot(k)
	s.filter[h>>6] |= 1 << (h & 63)
}

func slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> (64 - filterBits) }

type variant struct {
	name, text string
	whole      []byte
}

// variants are the forms of value that are searched for.
func variants(value []byte) []variant {
	var out []variant
	if len(value) >= PrefixMinLen {
		// Any prefix of PrefixLen bytes or more holds the first PrefixLen.
		out = append(out, variant{name: "as stored", text: string(value[:PrefixLen]), whole: value})
	} else {
		out = append(out, variant{name: "as stored", text: string(value)})
	}
	seen := map[string]bool{}
	add := func(name, text string) {
		if text != string(value) && !seen[text] {
			seen[text] = true
			out = append(out, variant{name: name, text: text})
		}
	}
	for off := range 3 {
		std, urlb := base64Core(base64.RawStdEncoding, value, off), base64Core(base64.RawURLEncoding, value, off)
		if std == urlb {
			add(fmt.Sprintf("base64 (offset %d)", off), std)
			continue
		}
		add(fmt.Sprintf("base64 std (offset %d)", off), std)
		add(fmt.Sprintf("base64url (offset %d)", off), urlb)
	}
	add("URL query-escaped", url.QueryEscape(string(value)))
	add("URL path-escaped", url.PathEscape(string(value)))
	add("hex", hex.EncodeToString(value))
	add("hex (upper case)", strings.ToUpper(hex.EncodeToString(value)))
	return out
}

// base64Core is the part of the encoding of value that is the same
// whatever surrounds it, when value starts off bytes (0–2) into a 3-byte
// group of a longer blob: the characters made of value's bits alone. At
// offset 0 it is a prefix of value's own encoding, padded or not.
func base64Core(enc *base64.Encoding, value []byte, off int) string {
	blob := append(make([]byte, off), value...)
	s := enc.EncodeToString(blob)
	first := (8*off + 5) / 6           // first character with no bit of the lead bytes
	last := 8 * (off + len(value)) / 6 // characters made of whole 6-bit groups of the blob
	return s[first:last]
}

// Scan returns the secrets data shows: one finding per secret and form, at
// its first occurrence. where names data in the findings.
func (s *Scanner) Scan(where string, data []byte) []Finding {
	var out []Finding
	found := map[seenKey]bool{}
	for i := 0; i+keyLen <= len(data); i++ {
		k := binary.LittleEndian.Uint64(data[i:])
		if h := slot(k); s.filter[h>>6]&(1<<(h&63)) == 0 {
			continue
		}
		for _, pi := range s.index[k] {
			p := &s.pats[pi]
			if !bytes.HasPrefix(data[i:], p.text) {
				continue
			}
			v, kind := p.variant, p.variant
			if p.whole != nil {
				if n := commonPrefix(data[i:], p.whole); n < len(p.whole) {
					v, kind = fmt.Sprintf("cut short (first %d of %d bytes)", n, len(p.whole)), "cut short"
				}
			}
			if key := (seenKey{p.secret, kind}); !found[key] {
				found[key] = true
				out = append(out, Finding{Secret: s.names[p.secret], Variant: v, Where: where, Line: 1 + bytes.Count(data[:i], []byte("\n"))})
			}
		}
	}
	return out
}

type seenKey struct {
	secret int
	kind   string
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}
