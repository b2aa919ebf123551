package cloud

import (
	"errors"
	"fmt"

	"github.com/aws/smithy-go"
	"github.com/mlstack/mlstack/provision/local"
)

// UsageError is bad input, found before anything is created (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func Usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// IsUsage reports whether err is (or wraps) a UsageError.
func IsUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// AsUsage turns the local-file errors that mean bad input (a state
// directory that cannot be written, one made for another account) into
// usage errors; others pass unchanged.
func AsUsage(err error) error {
	var nw *local.NotWritableError
	var fe *local.ForeignError
	if errors.As(err, &nw) || errors.As(err, &fe) {
		return &UsageError{Msg: err.Error()}
	}
	return err
}

// ErrorCode returns the AWS error code of err, or "".
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// ErrorMessage returns the AWS error message of err, or "".
func ErrorMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

// HasCode reports whether err carries one of the given AWS error codes.
func HasCode(err error, codes ...string) bool {
	c := ErrorCode(err)
	if c == "" {
		return false
	}
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

// NotOwnedError is a resource with a stack's name or tag that is not the
// stack's: it lacks the stack tag, or (an instance) runs with other than the
// stack's profile, group, key pair or image. mlstack never adopts, changes,
// deletes or uses such a resource.
type NotOwnedError struct {
	Kind, Name, Stack string
	Why               string // set when the tag is there but the rest differs
}

func (e *NotOwnedError) Error() string {
	if e.Why != "" {
		return fmt.Sprintf("%s %s is tagged %s=%s, but %s: it is not the stack's, and mlstack will not adopt, change, terminate or use it; "+
			"find out who launched it, and remove its tag or the instance", e.Kind, e.Name, TagStack, e.Stack, e.Why)
	}
	return fmt.Sprintf("%s %q exists but is not tagged %s=%s: mlstack will not adopt, change or delete it; "+
		"remove or rename it, or choose another --stack", e.Kind, e.Name, TagStack, e.Stack)
}
