package cloud

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// CallLog records AWS operations as "Service.Operation", once per call
// (retries are not counted twice).
type CallLog struct {
	mu  sync.Mutex
	ops []string
}

func (l *CallLog) Add(op string) {
	l.mu.Lock()
	l.ops = append(l.ops, op)
	l.mu.Unlock()
}

// Calls returns a copy of the recorded operations in call order.
func (l *CallLog) Calls() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ops...)
}

// Reset forgets the recorded operations.
func (l *CallLog) Reset() {
	l.mu.Lock()
	l.ops = nil
	l.mu.Unlock()
}

// Mutating returns the recorded operations that can change AWS state.
func (l *CallLog) Mutating() []string {
	var out []string
	for _, c := range l.Calls() {
		if IsMutating(c) {
			out = append(out, c)
		}
	}
	return out
}

// Summary is "N calls (M mutating): Op×k, …" for progress output and benchmarks.
func (l *CallLog) Summary() string {
	calls := l.Calls()
	count := map[string]int{}
	for _, c := range calls {
		count[c]++
	}
	keys := make([]string, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, count[k]))
	}
	return fmt.Sprintf("%d calls (%d mutating): %s", len(calls), len(l.Mutating()), strings.Join(parts, ", "))
}

// IsMutating reports whether "Service.Operation" may change state. Reads in
// these APIs all start with one of a few verbs.
func IsMutating(call string) bool {
	op := call[strings.LastIndex(call, ".")+1:]
	for _, p := range []string{"Describe", "List", "Get", "Head"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return true
}

// countCalls is SDK middleware that records each operation in log.
func countCalls(log *CallLog) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("mlstackCallLog",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				log.Add(awsmiddleware.GetServiceID(ctx) + "." + middleware.GetOperationName(ctx))
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
	}
}
