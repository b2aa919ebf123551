package awsmodel

// Requests read back from the wire into the tree CheckTree checks, so the
// proxy in front of moto asks the same rules as the in-memory fake. The
// trimmed models drive it: each protocol names a member on the wire by
// the model's locationName, queryName and flattened traits, the way
// botocore's serializers and the Go SDK's (both generated from these
// models) write it, so no operation needs code of its own. A request the
// models cannot account for, down to its last parameter, is an error:
// the caller learns the decoder (or the model) is behind what is sent.

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ErrUnknownOperation is wrapped by DecodeRequest's error when the request
// names an operation the trimmed model does not hold.
var ErrUnknownOperation = errors.New("operation not in the trimmed model")

// DecodeRequest reads a request as the SDK sends it (body is its whole
// body, already read) into the service's signing name, the operation and
// the tree of member names CheckTree reads.
func DecodeRequest(req *http.Request, body []byte) (svc, op string, tree map[string]any, err error) {
	svc = SigningService(req)
	ms, err := Models()
	if err != nil {
		return svc, "", nil, err
	}
	m := ms[svc]
	if m == nil {
		return svc, "", nil, fmt.Errorf("service %q (from the SigV4 credential scope) has no model", svc)
	}
	switch m.Metadata.Protocol {
	case "ec2", "query":
		op, tree, err = m.decodeForm(req, body)
	case "json":
		op, tree, err = m.decodeJSON(req, body)
	case "rest-xml":
		op, tree, err = m.decodeREST(req, body)
	default:
		err = fmt.Errorf("protocol %q is not decoded", m.Metadata.Protocol)
	}
	if err != nil {
		return svc, op, nil, fmt.Errorf("%s %s: %w", svc, op, err)
	}
	return svc, op, tree, nil
}

// SigningService is the service of the request's SigV4 credential scope
// (KEY/DATE/REGION/SERVICE/aws4_request), in its Authorization header or,
// presigned, its query; "" without one.
func SigningService(req *http.Request) string {
	cred := req.URL.Query().Get("X-Amz-Credential")
	auth := req.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		cred, _, _ = strings.Cut(auth[i+len("Credential="):], ",")
	}
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return ""
	}
	return parts[3]
}

// operation finds op's input shape, or an error wrapping
// ErrUnknownOperation.
func (m *Model) operation(op string) (string, error) {
	o, ok := m.Operations[op]
	if !ok {
		return "", fmt.Errorf("%q: %w", op, ErrUnknownOperation)
	}
	return o.Input, nil
}

// memberName is a member's name on the wire: for EC2 its queryName, or
// else its locationName with the first letter upper-cased; for the other
// protocols its locationName (the reference's, else its shape's); else
// the member's own name.
func (m *Model) memberName(ref Ref, member string, ec2 bool) string {
	if ec2 && ref.QueryName != "" {
		return ref.QueryName
	}
	name := ref.LocationName
	if sh := m.Shapes[ref.Shape]; name == "" && sh != nil {
		name = sh.LocationName
	}
	if name == "" {
		return member
	}
	if ec2 {
		return strings.ToUpper(name[:1]) + name[1:]
	}
	return name
}

// flattened: a list (or map) written without its wrapper, in the
// reference's or its shape's traits.
func (m *Model) flattened(ref Ref) bool {
	sh := m.Shapes[ref.Shape]
	return ref.Flattened || sh != nil && sh.Flattened
}

// scalar converts a wire string to the tree's type for shape typ; skip:
// a timestamp, which carries no rule the tree checks.
func scalar(typ, s string) (v any, skip bool, err error) {
	switch typ {
	case "string":
		return s, false, nil
	case "integer", "long":
		n, err := strconv.ParseInt(s, 10, 64)
		return n, false, err
	case "float", "double":
		f, err := strconv.ParseFloat(s, 64)
		return f, false, err
	case "boolean":
		b, err := strconv.ParseBool(s)
		return b, false, err
	case "blob":
		b, err := base64.StdEncoding.DecodeString(s)
		return b, false, err
	case "timestamp":
		return nil, true, nil
	}
	return nil, false, fmt.Errorf("no scalar of type %q", typ)
}

// formDecoder reads the ec2 and query protocols: a form of dotted names.
type formDecoder struct {
	m        *Model
	ec2      bool
	form     map[string]string
	prefixes map[string]bool // every name and each dotted prefix of one
	used     map[string]bool
}

// decodeForm reads Action=… and the members from the form body and the
// URL's query (a presigned GET carries them there).
func (m *Model) decodeForm(req *http.Request, body []byte) (string, map[string]any, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return "", nil, fmt.Errorf("form body: %w", err)
	}
	for k, v := range req.URL.Query() {
		if !strings.HasPrefix(k, "X-Amz-") { // a presigned request's signature
			vals[k] = append(vals[k], v...)
		}
	}
	d := &formDecoder{m: m, ec2: m.Metadata.Protocol == "ec2", form: map[string]string{}, prefixes: map[string]bool{}, used: map[string]bool{}}
	for k, v := range vals {
		if len(v) != 1 {
			return "", nil, fmt.Errorf("parameter %s given %d times", k, len(v))
		}
		d.form[k] = v[0]
		for p := k; ; {
			d.prefixes[p] = true
			i := strings.LastIndex(p, ".")
			if i < 0 {
				break
			}
			p = p[:i]
		}
	}
	op := d.form["Action"]
	d.used["Action"], d.used["Version"] = true, true
	input, err := m.operation(op)
	if err != nil {
		return op, nil, err
	}
	tree := map[string]any{}
	if input != "" {
		v, err := d.value(Ref{Shape: input}, "")
		if err != nil {
			return op, nil, err
		}
		tree, _ = v.(map[string]any)
	}
	return op, tree, d.unused()
}

// unused is an error naming the parameters no member accounts for.
func (d *formDecoder) unused() error {
	var left []string
	for k := range d.form {
		if !d.used[k] {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return fmt.Errorf("parameters not in the model: %s", strings.Join(left, ", "))
}

// value reads the member of shape ref.Shape written under name prefix
// (the input itself under ""); nil: absent.
func (d *formDecoder) value(ref Ref, prefix string) (any, error) {
	sh := d.m.Shapes[ref.Shape]
	if sh == nil {
		return nil, fmt.Errorf("no shape %s", ref.Shape)
	}
	if prefix != "" && !d.prefixes[prefix] {
		return nil, nil
	}
	switch sh.Type {
	case "structure":
		return d.structure(sh, prefix)
	case "list":
		return d.list(sh, ref, prefix)
	case "map":
		return d.mapOf(sh, ref, prefix)
	}
	s, ok := d.form[prefix]
	if !ok {
		return nil, fmt.Errorf("%s: a %s written as a list or structure", prefix, sh.Type)
	}
	d.used[prefix] = true
	v, _, err := scalar(sh.Type, s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", prefix, err)
	}
	return v, nil
}

func (d *formDecoder) structure(sh *Shape, prefix string) (any, error) {
	out := map[string]any{}
	for name, ref := range sh.Members {
		key := d.m.memberName(ref, name, d.ec2)
		if prefix != "" {
			key = prefix + "." + key
		}
		v, err := d.value(ref, key)
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[name] = v
		}
	}
	return out, nil
}

// list reads Name.N (ec2; flattened query lists), else
// Name.<member's locationName or "member">.N. An empty list (the query
// protocol writes "Name=") is absent, as Tree leaves it out.
func (d *formDecoder) list(sh *Shape, ref Ref, prefix string) (any, error) {
	if sh.Member == nil {
		return nil, fmt.Errorf("%s: a list without a member", prefix)
	}
	if v, ok := d.form[prefix]; ok && v == "" {
		d.used[prefix] = true
	}
	base := prefix
	if !d.ec2 && !d.m.flattened(ref) {
		name := sh.Member.LocationName
		if name == "" {
			name = "member"
		}
		base = prefix + "." + name
	}
	var out []any
	for i := 1; d.prefixes[base+"."+strconv.Itoa(i)]; i++ {
		v, err := d.value(*sh.Member, base+"."+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if out == nil {
		return nil, nil
	}
	return out, nil
}

// mapOf reads Name.entry.N.key and .value (flattened: Name.N.key).
func (d *formDecoder) mapOf(sh *Shape, ref Ref, prefix string) (any, error) {
	if sh.Key == nil || sh.Value == nil {
		return nil, fmt.Errorf("%s: a map without key or value", prefix)
	}
	base := prefix + ".entry"
	if d.m.flattened(ref) {
		base = prefix
	}
	keyName, valueName := sh.Key.LocationName, sh.Value.LocationName
	if keyName == "" {
		keyName = "key"
	}
	if valueName == "" {
		valueName = "value"
	}
	out := map[string]any{}
	for i := 1; d.prefixes[base+"."+strconv.Itoa(i)]; i++ {
		entry := base + "." + strconv.Itoa(i)
		k, ok := d.form[entry+"."+keyName]
		if !ok {
			return nil, fmt.Errorf("%s: an entry without its key", entry)
		}
		d.used[entry+"."+keyName] = true
		v, err := d.value(*sh.Value, entry+"."+valueName)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}
