package awsmodel

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
)

// decodeREST reads the rest-xml protocol (S3): the operation from the
// method and the model's requestUri templates, labels from the path (the
// bucket perhaps from the virtual host), members from headers, the query
// and the XML payload.
func (m *Model) decodeREST(req *http.Request, body []byte) (string, map[string]any, error) {
	path := req.URL.Path
	if b := virtualBucket(req.Host); b != "" {
		path = "/" + b
		if req.URL.Path != "/" {
			path += req.URL.Path
		}
	}
	q := req.URL.Query()
	op, labels, used, err := m.restOperation(req.Method, path, q, req.Header)
	if err != nil {
		return op, nil, err
	}
	input, _ := m.operation(op)
	sh := m.Shapes[input]
	tree := map[string]any{}
	if sh == nil {
		return op, tree, nil
	}
	for name, ref := range sh.Members {
		var v any
		var err error
		switch ref.Location {
		case "uri":
			v, err = m.wireValue(ref, []string{labels[ref.LocationName]}, labels[ref.LocationName] != "")
		case "querystring":
			used[ref.LocationName] = true
			v, err = m.wireValue(ref, q[ref.LocationName], q.Has(ref.LocationName))
		case "header":
			v, err = m.headerValue(ref, req.Header)
		case "headers":
			v = headersWithPrefix(req.Header, ref.LocationName)
		default:
			if name == sh.Payload {
				v, err = m.payload(ref, name, body)
			}
		}
		if err != nil {
			return op, nil, fmt.Errorf("%s: %w", name, err)
		}
		if v != nil {
			tree[name] = v
		}
	}
	return op, tree, unusedQuery(q, used)
}

// virtualBucket is the bucket of a virtual-hosted request
// (bucket.s3.region.amazonaws.com, bucket.s3-region…, a bucket with dots
// before the last s3 label); "" for an address, localhost or a path-style
// host.
func virtualBucket(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if net.ParseIP(host) != nil || !strings.Contains(host, ".") {
		return ""
	}
	labels := strings.Split(host, ".")
	for i := len(labels) - 1; i > 0; i-- {
		if labels[i] == "s3" || strings.HasPrefix(labels[i], "s3-") {
			return strings.Join(labels[:i], ".")
		}
	}
	return ""
}

// uriTemplate is one operation's requestUri: the path as a pattern with
// its labels, and the query-string discriminators (?tagging,
// ?list-type=2) that tell operations on one path apart.
type uriTemplate struct {
	op     string
	path   *regexp.Regexp
	labels []string
	query  url.Values
}

var labelRe = regexp.MustCompile(`\{([^}]+)\}`)

func parseTemplate(op, method, uri string) (uriTemplate, error) {
	p, rawQuery, _ := strings.Cut(uri, "?")
	t := uriTemplate{op: op}
	var pattern strings.Builder
	last := 0
	for _, loc := range labelRe.FindAllStringSubmatchIndex(p, -1) {
		pattern.WriteString(regexp.QuoteMeta(p[last:loc[0]]))
		name := p[loc[2]:loc[3]]
		if strings.HasSuffix(name, "+") { // greedy: the rest of the path, slashes too
			name = strings.TrimSuffix(name, "+")
			pattern.WriteString(`(.+)`)
		} else {
			pattern.WriteString(`([^/]+)`)
		}
		t.labels = append(t.labels, name)
		last = loc[1]
	}
	pattern.WriteString(regexp.QuoteMeta(p[last:]))
	var err error
	if t.path, err = regexp.Compile(`^` + pattern.String() + `/?$`); err != nil {
		return t, fmt.Errorf("%s %s: %w", method, uri, err)
	}
	t.query, err = url.ParseQuery(rawQuery)
	return t, err
}

// match is the template's labels for path and query, or ok false.
func (t uriTemplate) match(path string, q url.Values) (labels map[string]string, ok bool) {
	sub := t.path.FindStringSubmatch(path)
	if sub == nil {
		return nil, false
	}
	for k, want := range t.query {
		if !q.Has(k) || want[0] != "" && q.Get(k) != want[0] {
			return nil, false
		}
	}
	labels = map[string]string{}
	for i, name := range t.labels {
		labels[name] = sub[i+1]
	}
	return labels, true
}

// restOperation picks the operation whose template matches: the SDK's
// ?x-id=Op when given, else the one with the most discriminators, then
// the most required header and query members present (CopyObject's
// x-amz-copy-source, AbortMultipartUpload's uploadId); a template whose
// required member is missing does not match. used: the query names the
// choice accounts for.
func (m *Model) restOperation(method, path string, q url.Values, h http.Header) (string, map[string]string, map[string]bool, error) {
	type candidate struct {
		t      uriTemplate
		labels map[string]string
		score  [2]int
	}
	var best []candidate
	for _, op := range sortedOps(m) {
		o := m.Operations[op]
		if o.HTTP.Method != method || (q.Has("x-id") && q.Get("x-id") != op) {
			continue
		}
		t, err := parseTemplate(op, method, o.HTTP.RequestURI)
		if err != nil {
			return "", nil, nil, err
		}
		labels, ok := t.match(path, q)
		present, complete := m.requiredPresent(o.Input, q, h)
		if !ok || !complete {
			continue
		}
		c := candidate{t, labels, [2]int{len(t.query), present}}
		switch {
		case len(best) == 0 || c.score[0] > best[0].score[0] || c.score[0] == best[0].score[0] && c.score[1] > best[0].score[1]:
			best = []candidate{c}
		case c.score == best[0].score:
			best = append(best, c)
		}
	}
	switch {
	case len(best) == 0:
		return "", nil, nil, fmt.Errorf("%s %s?%s: %w", method, path, q.Encode(), ErrUnknownOperation)
	case len(best) > 1:
		return "", nil, nil, fmt.Errorf("%s %s: both %s and %s match", method, path, best[0].t.op, best[1].t.op)
	}
	used := map[string]bool{"x-id": true}
	for k := range best[0].t.query {
		used[k] = true
	}
	return best[0].t.op, best[0].labels, used, nil
}

func sortedOps(m *Model) []string {
	ops := make([]string, 0, len(m.Operations))
	for op := range m.Operations {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	return ops
}

// requiredPresent counts the input's required header and query members
// the request has; complete is false when one is missing.
func (m *Model) requiredPresent(input string, q url.Values, h http.Header) (n int, complete bool) {
	sh := m.Shapes[input]
	if sh == nil {
		return 0, true
	}
	for _, name := range sh.Required {
		ref := sh.Members[name]
		switch {
		case ref.Location == "header" && h.Get(ref.LocationName) != "",
			ref.Location == "querystring" && q.Has(ref.LocationName):
			n++
		case ref.Location == "header", ref.Location == "querystring":
			return n, false
		}
	}
	return n, true
}

// unusedQuery is an error naming the query parameters no member or
// discriminator accounts for (a presigned URL's X-Amz-* are the
// signature's).
func unusedQuery(q url.Values, used map[string]bool) error {
	var left []string
	for k := range q {
		if !used[k] && !strings.HasPrefix(k, "X-Amz-") {
			left = append(left, k)
		}
	}
	if len(left) == 0 {
		return nil
	}
	sort.Strings(left)
	return fmt.Errorf("query parameters not in the model: %s", strings.Join(left, ", "))
}

// wireValue converts the strings of a label, query or header member: a
// list from its values, else the one value.
func (m *Model) wireValue(ref Ref, vals []string, present bool) (any, error) {
	sh := m.Shapes[ref.Shape]
	if !present || sh == nil {
		return nil, nil
	}
	if sh.Type == "list" && sh.Member != nil {
		out := make([]any, 0, len(vals))
		for _, s := range vals {
			v, err := m.wireValue(*sh.Member, []string{s}, true)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	}
	v, _, err := scalar(sh.Type, vals[0])
	return v, err
}

// headerValue reads a header member; a list header is comma-separated.
func (m *Model) headerValue(ref Ref, h http.Header) (any, error) {
	if _, ok := h[http.CanonicalHeaderKey(ref.LocationName)]; !ok {
		return nil, nil
	}
	s := h.Get(ref.LocationName)
	if sh := m.Shapes[ref.Shape]; sh != nil && sh.Type == "list" {
		parts := strings.Split(s, ",")
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		return m.wireValue(ref, parts, true)
	}
	return m.wireValue(ref, []string{s}, true)
}

// headersWithPrefix is a headers map member (x-amz-meta-*): its keys
// lower-cased, as HTTP does not keep their case.
func headersWithPrefix(h http.Header, prefix string) any {
	out := map[string]any{}
	for k := range h {
		if len(k) > len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) {
			out[strings.ToLower(k[len(prefix):])] = h.Get(k)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// payload reads the payload member from the XML body. A blob or string
// payload (PutObject's Body) is the object's bytes, which carry no rule:
// it is left out of the tree.
func (m *Model) payload(ref Ref, name string, body []byte) (any, error) {
	sh := m.Shapes[ref.Shape]
	if sh == nil || sh.Type != "structure" || len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	root, err := parseXML(body)
	if err != nil {
		return nil, fmt.Errorf("XML payload: %w", err)
	}
	if want := m.memberName(ref, name, false); root.name != want {
		return nil, fmt.Errorf("XML payload is <%s>, not <%s>", root.name, want)
	}
	return m.fromXML(ref, root, name)
}

// xmlNode is one element: its name, its text, its child elements.
type xmlNode struct {
	name     string
	text     string
	children []*xmlNode
}

func parseXML(body []byte) (*xmlNode, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	var stack []*xmlNode
	var root *xmlNode
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			n := &xmlNode{name: t.Name.Local}
			if len(stack) > 0 {
				top := stack[len(stack)-1]
				top.children = append(top.children, n)
			} else if root == nil {
				root = n
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text += string(t)
			}
		}
	}
	if root == nil {
		return nil, errors.New("no root element")
	}
	return root, nil
}

// fromXML reads element n as shape ref.Shape.
func (m *Model) fromXML(ref Ref, n *xmlNode, path string) (any, error) {
	sh := m.Shapes[ref.Shape]
	if sh == nil {
		return nil, fmt.Errorf("no shape %s", ref.Shape)
	}
	switch sh.Type {
	case "structure":
		return m.xmlStructure(sh, n, path)
	case "list":
		if sh.Member == nil {
			return nil, fmt.Errorf("%s: a list without a member", path)
		}
		var out []any
		for i, c := range n.children {
			v, err := m.fromXML(*sh.Member, c, fmt.Sprintf("%s.%d", path, i+1))
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case "map":
		return nil, fmt.Errorf("%s: an XML map is not decoded", path)
	}
	v, _, err := scalar(sh.Type, n.text)
	return v, wrapAt(path, err)
}

// xmlStructure reads a structure's child elements by their members' wire
// names; a flattened list's items are repeated elements of its name.
func (m *Model) xmlStructure(sh *Shape, n *xmlNode, path string) (any, error) {
	byWire := map[string]string{}
	for name, ref := range sh.Members {
		byWire[m.memberName(ref, name, false)] = name
	}
	out := map[string]any{}
	for _, c := range n.children {
		name, ok := byWire[c.name]
		if !ok {
			return nil, fmt.Errorf("%s: element <%s> not in the model", path, c.name)
		}
		ref := sh.Members[name]
		if lsh := m.Shapes[ref.Shape]; lsh != nil && lsh.Type == "list" && m.flattened(ref) && lsh.Member != nil {
			items, _ := out[name].([]any)
			v, err := m.fromXML(*lsh.Member, c, fmt.Sprintf("%s.%d", join(path, name), len(items)+1))
			if err != nil {
				return nil, err
			}
			out[name] = append(items, v)
			continue
		}
		v, err := m.fromXML(ref, c, join(path, name))
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[name] = v
		}
	}
	return out, nil
}
