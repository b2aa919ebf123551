package local

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mlstack/mlstack/provision/local/envfile"
)

// TestStoreUpdate: every change is on disk before the store hands it out;
// concurrent updates (a key and a nonce) both survive.
func TestStoreUpdate(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	st := NewStore(d, *sampleSecrets())
	var wg sync.WaitGroup
	for _, f := range []func(*Secrets){
		func(s *Secrets) { s.AccessKeyID, s.SecretAccessKey = "AKIANEW", "new-secret" },
		func(s *Secrets) { s.LaunchNonce = "nonce-2" },
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := st.Update(f); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	got, err := d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, st.Get()) || got.AccessKeyID != "AKIANEW" || got.LaunchNonce != "nonce-2" || got.MLflowPassword != sampleSecrets().MLflowPassword {
		t.Errorf("on disk %+v, in the store %+v", got, st.Get())
	}
}

// TestStoreUpdateFailedSave: when the save fails, the change does not take effect.
func TestStoreUpdateFailedSave(t *testing.T) {
	root := t.TempDir()
	file := filepath.Join(root, "afile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	st := NewStore(Dir{path: filepath.Join(file, "demo")}, *sampleSecrets())
	if err := st.Update(func(s *Secrets) { s.AccessKeyID = "AKIALOST" }); err == nil {
		t.Fatal("Update below a file succeeded")
	}
	if st.Get().AccessKeyID != sampleSecrets().AccessKeyID {
		t.Errorf("a change that was not saved took effect: %+v", st.Get())
	}
}

func TestEnvFile(t *testing.T) {
	d := StackDir(t.TempDir(), "demo")
	if _, err := d.ReadEnv(); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing env file: %v, want fs.ErrNotExist", err)
	}
	vars := []envfile.Var{{Name: "A", Value: "it's $x"}, {Name: "B", Value: "two\nlines"}}
	if err := d.WriteEnv(vars); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d.EnvFile()); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("env file: %v, %v", err, fi)
	}
	got, err := d.ReadEnv()
	if err != nil || len(got) != 2 || got[0] != vars[0] || got[1] != vars[1] {
		t.Fatalf("ReadEnv = %v, %v", got, err)
	}
	if err := d.WriteEnv([]envfile.Var{{Name: "1BAD", Value: "x"}}); err == nil {
		t.Error("an invalid name was written")
	}
	if err := d.writeFile(envName, []byte("export A='unterminated\n")); err != nil {
		t.Fatal(err)
	}
	_, err = d.ReadEnv()
	var damaged *DamagedEnvError
	if !errors.As(err, &damaged) || !strings.Contains(err.Error(), d.EnvFile()) {
		t.Errorf("damaged env file: %v", err)
	}
}

// TestLock: a second run on the same stack waits (and says so once) until
// the first lets go; another stack does not wait; a cancelled wait ends.
func TestLock(t *testing.T) {
	root := t.TempDir()
	unlock, err := Lock(context.Background(), root, "demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := Lock(context.Background(), root, "other", func() { t.Error("another stack waited") })
	if err != nil {
		t.Fatal(err)
	}
	other()

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	waits := 0
	if _, err := Lock(ctx, root, "demo", func() { waits++ }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("lock held elsewhere: %v, want the deadline", err)
	}
	if waits != 1 {
		t.Errorf("waiting reported %d times, want once", waits)
	}

	got := make(chan error, 1)
	go func() {
		u, err := Lock(context.Background(), root, "demo", nil)
		if err == nil {
			u()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	unlock()
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting run did not get the lock after unlock")
	}

	file := filepath.Join(root, "afile")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var nw *NotWritableError
	if _, err := Lock(context.Background(), filepath.Join(file, "sub"), "demo", nil); !errors.As(err, &nw) {
		t.Errorf("state dir below a file: %v, want a *NotWritableError", err)
	}
}

// TestLockFileGoesWithTheStack: a lock file outlives no stack folder; with a
// folder it stays. A run that waited on a file removed meanwhile locks the
// new one, so two runs never hold the lock at once.
func TestLockFileGoesWithTheStack(t *testing.T) {
	root := t.TempDir()
	lockPath := filepath.Join(root, ".demo.lock")
	unlock, err := Lock(context.Background(), root, "demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(lockPath); !os.IsNotExist(err) {
		t.Errorf("lock file of a stack without a folder left behind (%v)", err)
	}

	d := StackDir(root, "demo")
	if err := d.Save(sampleSecrets()); err != nil {
		t.Fatal(err)
	}
	unlock, err = Lock(context.Background(), root, "demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	if _, err := os.Stat(lockPath); err != nil {
		t.Errorf("lock file of a live stack removed: %v", err)
	}

	// The holder removes the stack and its lock file just after a second
	// run opened that file, and a third run makes and locks a new one: the
	// second must not lock the unlinked file, but wait for the third.
	must(t, d.Remove())
	first, err := Lock(context.Background(), root, "demo", nil)
	if err != nil {
		t.Fatal(err)
	}
	var third func()
	lockOpened = func() {
		if third == nil {
			third = func() {}
			first()
			if third, err = Lock(context.Background(), root, "demo", nil); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(func() { lockOpened = func() {} })
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Lock(ctx, root, "demo", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a second run got the lock while the third held it: %v", err)
	}
	third()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
