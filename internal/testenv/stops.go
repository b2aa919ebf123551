package testenv

import (
	"context"
	"fmt"
	"testing"
)

// fatalTB records the first Fatal and stops the caller, as the real one
// does, here with a panic that StopsAt recovers. Logs are dropped.
type fatalTB struct {
	testing.TB
	fatal string
}

type fatalStop struct{}

func (f *fatalTB) Helper()                  {}
func (f *fatalTB) Logf(string, ...any)      {}
func (f *fatalTB) Context() context.Context { return context.Background() }
func (f *fatalTB) Fatal(a ...any) {
	f.fatal = fmt.Sprint(a...)
	panic(fatalStop{})
}
func (f *fatalTB) Fatalf(format string, a ...any) {
	f.fatal = fmt.Sprintf(format, a...)
	panic(fatalStop{})
}

// StopsAt runs fn, a test helper's failure path, with a testing.TB that
// records what it failed with, and returns that ("" when fn returned
// normally): the helper's own failures can be tested without failing the
// test that checks them.
func StopsAt(fn func(t testing.TB)) string {
	f := &fatalTB{}
	func() {
		defer func() {
			if r := recover(); r != nil && r != (fatalStop{}) {
				panic(r)
			}
		}()
		fn(f)
	}()
	return f.fatal
}
