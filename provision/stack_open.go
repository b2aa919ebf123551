package provision

import (
	"context"

	"github.com/mlstack/mlstack/provision/local"
)

// openedStack is one stack opened by a lifecycle command: its session,
// derived names and local files, with the per-stack lock held until release.
type openedStack struct {
	s       *session
	n       names
	dir     local.Dir
	secrets *local.Secrets // nil when this machine has no local state for the stack
	home    stackHome      // where the stack lives and who made it, says IAM
	// bucketHead is HeadBucket's answer for the stack's bucket, if asked.
	bucketHead bucketHead
	release    func()
}

// openStack takes the stack's lock (unless lock is false, for reads and
// plans that change nothing), connects, derives the names and loads the
// local secrets, refusing a state folder of another account or region and
// a stack that lives in another region.
func openStack(ctx context.Context, st Stack, a AWS, log *progress, lock bool) (*openedStack, error) {
	o := &openedStack{dir: local.StackDir(st.StateDir, st.Name), release: func() {}}
	if lock {
		unlock, err := local.Lock(ctx, st.StateDir, st.Name, func() {
			log.Info("another mlstack run is working on stack %s; waiting for it", st.Name)
		})
		if err != nil {
			return nil, asUsage(err)
		}
		o.release = unlock
	}
	var err error
	defer func() {
		if err != nil {
			o.release()
		}
	}()
	if o.s, err = openSession(ctx, a); err != nil {
		return nil, err
	}
	o.n = namesFor(st.Name, o.s.account, o.s.region)
	if err = o.n.check(); err != nil {
		return nil, err
	}
	if o.n, o.bucketHead, err = resolveBucketHead(ctx, o.s.s3, o.n); err != nil {
		return nil, err
	}
	if o.home, err = findHome(ctx, o.s.iam, o.n); err != nil {
		return nil, err
	}
	if err = o.home.checkRegion(st.Name, o.s.region); err != nil {
		return nil, err
	}
	if o.secrets, err = o.dir.LoadFor(o.s.account, o.s.region); err != nil {
		err = asUsage(err)
		return nil, err
	}
	return o, nil
}

// pendingBucket is the bucket this machine created and has not tagged yet, if any.
func (o *openedStack) pendingBucket() string {
	if o.secrets == nil {
		return ""
	}
	return o.secrets.PendingBucket
}
