package awsmodel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
)

// decodeJSON reads the json protocol: X-Amz-Target names the operation
// ("AmazonSSM.PutParameter"), the body is the input by member name.
func (m *Model) decodeJSON(req *http.Request, body []byte) (string, map[string]any, error) {
	target := req.Header.Get("X-Amz-Target")
	prefix, op, ok := strings.Cut(target, ".")
	if !ok || prefix != m.Metadata.TargetPrefix {
		return "", nil, fmt.Errorf("X-Amz-Target %q is not %s.<operation>", target, m.Metadata.TargetPrefix)
	}
	input, err := m.operation(op)
	if err != nil {
		return op, nil, err
	}
	tree := map[string]any{}
	if input == "" || len(bytes.TrimSpace(body)) == 0 {
		return op, tree, nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // an int64 stays exact
	var raw any
	if err := dec.Decode(&raw); err != nil {
		return op, nil, fmt.Errorf("JSON body: %w", err)
	}
	v, err := m.fromJSON(Ref{Shape: input}, raw, "")
	if err != nil {
		return op, nil, err
	}
	if v != nil {
		tree = v.(map[string]any)
	}
	return op, tree, nil
}

// fromJSON converts a decoded JSON value to the tree's types for shape
// ref.Shape; nil: null, or a timestamp.
func (m *Model) fromJSON(ref Ref, v any, path string) (any, error) {
	sh := m.Shapes[ref.Shape]
	if sh == nil {
		return nil, fmt.Errorf("no shape %s", ref.Shape)
	}
	if v == nil {
		return nil, nil
	}
	switch x := v.(type) {
	case map[string]any:
		return m.jsonObject(sh, x, path)
	case []any:
		if sh.Type != "list" || sh.Member == nil {
			return nil, fmt.Errorf("%s: a list for a %s", path, sh.Type)
		}
		out := make([]any, len(x))
		for i, item := range x {
			var err error
			if out[i], err = m.fromJSON(*sh.Member, item, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return nil, err
			}
		}
		return out, nil
	case json.Number:
		if sh.Type == "timestamp" {
			return nil, nil
		}
		v, _, err := scalar(sh.Type, x.String())
		return v, wrapAt(path, err)
	case string:
		v, _, err := scalar(sh.Type, x)
		return v, wrapAt(path, err)
	case bool:
		if sh.Type != "boolean" {
			return nil, fmt.Errorf("%s: a boolean for a %s", path, sh.Type)
		}
		return x, nil
	}
	return nil, fmt.Errorf("%s: unexpected JSON %T", path, v)
}

// jsonObject reads a structure by its members' wire names, or a map.
func (m *Model) jsonObject(sh *Shape, x map[string]any, path string) (any, error) {
	out := map[string]any{}
	switch sh.Type {
	case "map":
		for k, item := range x {
			v, err := m.fromJSON(*sh.Value, item, join(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case "structure":
	default:
		return nil, fmt.Errorf("%s: an object for a %s", path, sh.Type)
	}
	byWire := map[string]string{}
	for name, ref := range sh.Members {
		byWire[m.memberName(ref, name, false)] = name
	}
	keys := make([]string, 0, len(x))
	for k := range x {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name, ok := byWire[k]
		if !ok {
			return nil, fmt.Errorf("%s: member not in the model", join(path, k))
		}
		v, err := m.fromJSON(sh.Members[name], x[k], join(path, name))
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[name] = v
		}
	}
	return out, nil
}

func wrapAt(path string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
