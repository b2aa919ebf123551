// Package awsmodel is the one model of the AWS behaviours mlstack's tests
// need where a stand-in would be kinder than AWS: client-token idempotency,
// the free plan's refusals, bucket names that stay busy, eventual
// consistency, RDS's slow states and classes per version, documented rules
// on texts (security group texts, tag values), the instance types each
// region has, and one fault injector. Each rule is a
// plain state machine over names and ids, with no transport: the in-memory
// fake of provision asks it with SDK inputs, the proxy in front of moto with
// what it parsed from HTTP, and both answer AWS's codes and messages.
//
// The rule types are not safe for concurrent use: the tier that holds one
// locks around it, as it locks its own state (Faults alone locks itself,
// being shared by a test and the calls it injects into).
package awsmodel

import "net/http"

// Error is one AWS error answer: its code and message as AWS words them,
// and the HTTP status AWS answers with (for a tier that speaks HTTP).
type Error struct {
	Code, Message string
	Status        int
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// ErrorCode and ErrorMessage let code that matches AWS errors by code read
// an *Error as it reads the SDK's.
func (e *Error) ErrorCode() string    { return e.Code }
func (e *Error) ErrorMessage() string { return e.Message }

func badRequest(code, msg string) *Error {
	return &Error{Code: code, Message: msg, Status: http.StatusBadRequest}
}

// Throttling is the answer of a service (by its signing name) to a caller
// over its request rate: S3 and EC2 name and status it their own way.
func Throttling(service string) *Error {
	switch service {
	case "s3":
		return &Error{Code: "SlowDown", Message: "Please reduce your request rate.", Status: http.StatusServiceUnavailable}
	case "ec2":
		return &Error{Code: "RequestLimitExceeded", Message: "Request limit exceeded.", Status: http.StatusServiceUnavailable}
	}
	return badRequest("Throttling", "Rate exceeded")
}
