package awsmodel

// Requests checked against AWS's own service models: every constraint
// botocore's models carry for the input shapes of the operations mlstack
// calls (required members, length and range, pattern, enum), answered as
// the service answers a request that breaks one. Both tiers ask: the fake
// with the SDK's input struct (CheckInput), the proxy in front of moto
// with the request decoded into a tree of member names (CheckTree). The
// models are botocore's, trimmed (internal/awsmodel/botocore, written by
// cmd/trimmodels from the moto venv's botocore and checked by
// TestModelsFresh), so the rules are the same on any day.

import (
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

//go:embed botocore/*.json
var modelFiles embed.FS

// Ref is a reference to a shape, with the wire names a member has.
type Ref struct {
	Shape        string `json:"shape"`
	Location     string `json:"location"`
	LocationName string `json:"locationName"`
	QueryName    string `json:"queryName"`
	Flattened    bool   `json:"flattened"`
}

// Shape is one shape of a model: its type, its members and its rules.
type Shape struct {
	Type         string         `json:"type"`
	Required     []string       `json:"required"`
	Members      map[string]Ref `json:"members"`
	Member       *Ref           `json:"member"`
	Key          *Ref           `json:"key"`
	Value        *Ref           `json:"value"`
	Min          *float64       `json:"min"`
	Max          *float64       `json:"max"`
	Pattern      string         `json:"pattern"`
	Enum         []string       `json:"enum"`
	LocationName string         `json:"locationName"`
	Flattened    bool           `json:"flattened"`
	Sensitive    bool           `json:"sensitive"`
	Payload      string         `json:"payload"`

	re *regexp.Regexp // Pattern, anchored, in RE2's syntax; nil: none or not expressible
}

// Operation is one operation: how it travels and its input shape.
type Operation struct {
	HTTP struct {
		Method     string `json:"method"`
		RequestURI string `json:"requestUri"`
	} `json:"http"`
	Input string `json:"input"`
}

// Model is one service's trimmed model.
type Model struct {
	Botocore string `json:"botocore"`
	Metadata struct {
		Protocol     string `json:"protocol"`
		TargetPrefix string `json:"targetPrefix"`
	} `json:"metadata"`
	Operations map[string]Operation `json:"operations"`
	Shapes     map[string]*Shape    `json:"shapes"`

	// Unexpressible lists the patterns Go's regexp cannot run (look-around):
	// checked for length and type only.
	Unexpressible []string

	openEnums bool // enums not checked (EC2, S3)
}

var (
	modelsOnce sync.Once
	models     map[string]*Model
	modelsErr  error
)

// Models returns the trimmed models by service (ec2, iam, rds, s3, ssm, sts).
func Models() (map[string]*Model, error) {
	modelsOnce.Do(func() { models, modelsErr = loadModels() })
	return models, modelsErr
}

func loadModels() (map[string]*Model, error) {
	entries, err := modelFiles.ReadDir("botocore")
	if err != nil {
		return nil, err
	}
	out := map[string]*Model{}
	for _, e := range entries {
		b, err := modelFiles.ReadFile("botocore/" + e.Name())
		if err != nil {
			return nil, err
		}
		m := &Model{}
		if err := json.Unmarshal(b, m); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		for name, sh := range m.Shapes {
			if sh.Pattern == "" {
				continue
			}
			if sh.re, err = compilePattern(sh.Pattern); err != nil {
				m.Unexpressible = append(m.Unexpressible, name+": "+sh.Pattern)
			}
		}
		sort.Strings(m.Unexpressible)
		name := strings.TrimSuffix(e.Name(), ".json")
		m.openEnums = name == "ec2" || name == "s3"
		out[name] = m
	}
	return out, nil
}

var javaUnicode = regexp.MustCompile(`\\u([0-9A-Fa-f]{4})([0-9A-Fa-f]{0,2})`)

// compilePattern turns a model's pattern (Java's syntax, matched against
// the whole value as AWS's validation does) into Go's: \uXXXX becomes
// \x{XXXX} (the models write the supplementary planes as \u10000 and
// \u10FFFF), and the pattern is anchored.
func compilePattern(p string) (*regexp.Regexp, error) {
	p = javaUnicode.ReplaceAllStringFunc(p, func(m string) string {
		hex, extra := m[2:6], m[6:]
		if strings.HasPrefix(hex, "10") && extra != "" { // a supplementary code point
			return `\x{` + hex + extra + `}`
		}
		return `\x{` + hex + `}` + extra
	})
	return regexp.Compile(`^(?:` + p + `)$`)
}

// CheckInput checks an SDK input struct (a pointer to one) for operation
// op of service svc against the model. Operations the model lacks are not
// checked (TestModelsCoverFake keeps the fake from calling one).
func CheckInput(svc, op string, in any) *Error {
	return CheckTree(svc, op, Tree(in))
}

// CheckTree checks a request decoded into a tree of member names: a
// structure is a map[string]any, a list []any, a map map[string]any of
// its keys, a scalar a string, int64, float64, bool or []byte.
func CheckTree(svc, op string, tree map[string]any) *Error {
	ms, err := Models()
	if err != nil {
		return &Error{Code: "InternalFailure", Message: "awsmodel: " + err.Error(), Status: http.StatusInternalServerError}
	}
	m := ms[svc]
	if m == nil {
		return nil
	}
	o, ok := m.Operations[op]
	if !ok || o.Input == "" {
		return nil
	}
	c := &checker{model: m}
	c.check(o.Input, tree, "")
	c.broken = append(c.broken, checkDocumented(svc, op, tree)...)
	if len(c.broken) == 0 {
		return nil
	}
	return validationError(svc, c.broken)
}

// violation is one broken rule: where, and what AWS says of it.
type violation struct {
	path, value, rule string
	missing           bool
	code              string // a documented rule's own code ("": the service's)
}

type checker struct {
	model  *Model
	broken []violation
}

func (c *checker) fail(path, value, rule string, sensitive bool) {
	if sensitive {
		value = "" // AWS does not echo a sensitive value
	}
	c.broken = append(c.broken, violation{path: path, value: value, rule: rule})
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// check walks value against shape name.
func (c *checker) check(name string, value any, path string) {
	sh := c.model.Shapes[name]
	if sh == nil || value == nil {
		return
	}
	switch v := value.(type) {
	case map[string]any:
		c.checkMap(sh, v, path)
	case []any:
		c.checkLen(sh, len(v), path, fmt.Sprintf("%d items", len(v)))
		if sh.Member != nil {
			for i, item := range v {
				c.check(sh.Member.Shape, item, fmt.Sprintf("%s.%d", path, i+1))
			}
		}
	case string:
		c.checkString(sh, v, path)
	case []byte:
		c.checkLen(sh, len(v), path, "")
	case int64:
		c.checkRange(sh, float64(v), path)
	case float64:
		c.checkRange(sh, v, path)
	}
}

func (c *checker) checkMap(sh *Shape, v map[string]any, path string) {
	if sh.Type == "map" {
		c.checkLen(sh, len(v), path, fmt.Sprintf("%d entries", len(v)))
		for k, item := range v {
			if sh.Key != nil {
				c.check(sh.Key.Shape, k, join(path, k))
			}
			if sh.Value != nil {
				c.check(sh.Value.Shape, item, join(path, k))
			}
		}
		return
	}
	for _, req := range sh.Required {
		if _, ok := v[req]; !ok {
			c.broken = append(c.broken, violation{path: join(path, req), missing: true})
		}
	}
	names := make([]string, 0, len(v))
	for k := range v {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if ref, ok := sh.Members[k]; ok {
			c.check(ref.Shape, v[k], join(path, k))
		}
	}
}

func (c *checker) checkString(sh *Shape, v, path string) {
	c.checkLenOf(sh, utf8.RuneCountInString(v), path, v)
	// EC2 and S3 validate their enums themselves, per operation, with their
	// own codes (InvalidInstanceType, InvalidLocationConstraint…): the
	// model's lists are a snapshot of values, not the rule (S3's list of
	// location constraints lacks regions the SDK's partitions name).
	if len(sh.Enum) > 0 && !c.model.openEnums && !contains(sh.Enum, v) {
		c.fail(path, v, "Member must satisfy enum value set: ["+strings.Join(sh.Enum, ", ")+"]", sh.Sensitive)
	}
	if sh.re != nil && !sh.re.MatchString(v) {
		c.fail(path, v, "Member must satisfy regular expression pattern: "+sh.Pattern, sh.Sensitive)
	}
}

func (c *checker) checkLen(sh *Shape, n int, path, shown string) {
	c.checkLenOf(sh, n, path, shown)
}

func (c *checker) checkLenOf(sh *Shape, n int, path, shown string) {
	if sh.Min != nil && float64(n) < *sh.Min {
		c.fail(path, shown, fmt.Sprintf("Member must have length greater than or equal to %d", int(*sh.Min)), sh.Sensitive)
	}
	if sh.Max != nil && float64(n) > *sh.Max {
		c.fail(path, shown, fmt.Sprintf("Member must have length less than or equal to %d", int(*sh.Max)), sh.Sensitive)
	}
}

func (c *checker) checkRange(sh *Shape, v float64, path string) {
	shown := fmt.Sprint(v)
	if sh.Min != nil && v < *sh.Min {
		c.fail(path, shown, fmt.Sprintf("Member must have value greater than or equal to %v", *sh.Min), sh.Sensitive)
	}
	if sh.Max != nil && v > *sh.Max {
		c.fail(path, shown, fmt.Sprintf("Member must have value less than or equal to %v", *sh.Max), sh.Sensitive)
	}
}

func contains(list []string, v string) bool {
	for _, s := range list {
		if s == v {
			return true
		}
	}
	return false
}

// validationError words the broken rules as the service does: the JSON
// and query services as AWS's request validation ("1 validation error
// detected: Value 'x' at 'userName' failed to satisfy constraint: …"),
// EC2 and S3 with their own codes.
func validationError(svc string, broken []violation) *Error {
	var parts []string
	for _, b := range broken {
		if b.missing {
			parts = append(parts, fmt.Sprintf("Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(b.path)))
			continue
		}
		shown := "Value"
		if b.value != "" {
			shown = fmt.Sprintf("Value '%s'", b.value)
		}
		parts = append(parts, fmt.Sprintf("%s at '%s' failed to satisfy constraint: %s", shown, lowerFirst(b.path), b.rule))
	}
	msg := fmt.Sprintf("%d validation error%s detected: %s", len(broken), plural(len(broken)), strings.Join(parts, "; "))
	code := map[string]string{"ec2": "InvalidParameterValue", "rds": "InvalidParameterValue", "s3": "InvalidArgument",
		"ssm": "ValidationException"}[svc]
	if code == "" {
		code = "ValidationError"
	}
	if svc == "ec2" && broken[0].missing {
		code = "MissingParameter"
	}
	if broken[0].code != "" {
		code = broken[0].code
	}
	return badRequest(code, msg)
}

// lowerFirst writes a member path as AWS's validation does: each
// member's name with a lower-case first letter (userName, tags.1.value).
func lowerFirst(path string) string {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		if p != "" {
			parts[i] = strings.ToLower(p[:1]) + p[1:]
		}
	}
	return strings.Join(parts, ".")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// Tree turns an SDK input struct into the tree CheckTree reads: exported
// fields by name, unset (nil, zero enum string, zero number) fields left
// out, as the SDK leaves them out of the request.
func Tree(in any) map[string]any {
	v, _ := treeOf(reflect.ValueOf(in)).(map[string]any)
	return v
}

func treeOf(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Struct:
		return structTree(v)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return v.Bytes()
		}
		if v.Len() == 0 {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = treeOf(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.Len() == 0 {
			return nil // as an empty list: the SDK sends nothing
		}
		out := map[string]any{}
		for _, k := range v.MapKeys() {
			out[fmt.Sprint(k.Interface())] = treeOf(v.MapIndex(k))
		}
		return out
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Float32, reflect.Float64:
		if f := v.Float(); !math.IsNaN(f) {
			return f
		}
	case reflect.Bool:
		return v.Bool()
	}
	return nil
}

func structTree(v reflect.Value) any {
	if v.Type().PkgPath() == "time" {
		return nil // timestamps carry no rule here
	}
	out := map[string]any{}
	for i := 0; i < v.NumField(); i++ {
		f := v.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if fv.Kind() != reflect.Pointer && fv.Kind() != reflect.Slice && fv.Kind() != reflect.Map && fv.Kind() != reflect.Interface && fv.IsZero() {
			continue // a zero enum or number: the SDK sends nothing
		}
		if x := treeOf(fv); x != nil {
			out[f.Name] = x
		}
	}
	return out
}
