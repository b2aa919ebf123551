package provision

import (
	"context"

	"github.com/mlstack/mlstack/provision/internal/cloud"

	"github.com/mlstack/mlstack/provision/local"
)

// openedStack is one stack opened by a lifecycle command: its session,
// derived names and local files, with the per-stack lock held until release.
type openedStack struct {
	s       *cloud.Session
	n       cloud.Names
	dir     local.Dir
	secrets *local.Secrets  // nil when this machine has no local state for the stack
	home    cloud.StackHome // where the stack lives and who made it, says IAM
	// bucketHead is HeadBucket's answer for the stack's bucket, if asked.
	bucketHead cloud.BucketHead
	release    func()
}

// openStack takes the stack's lock (unless lock is false, for reads and
// plans that change nothing), connects, derives the names and loads the
// local secrets, refusing a state folder of another account or region and
// a stack that lives in another region.
func openStack(ctx context.Context, st Stack, a cloud.AWS, log *progress, lock bool) (*openedStack, error) {
	o := &openedStack{dir: local.StackDir(st.StateDir, st.Name), release: func() {}}
	if lock {
		unlock, err := local.Lock(ctx, st.StateDir, st.Name, func() {
			log.Info("another mlstack run is working on stack %s; waiting for it", st.Name)
		})
		if err != nil {
			return nil, cloud.AsUsage(err)
		}
		o.release = unlock
	}
	var err error
	defer func() {
		if err != nil {
			o.release()
		}
	}()
	if o.s, err = cloud.OpenSession(ctx, a); err != nil {
		return nil, err
	}
	o.n = cloud.NamesFor(st.Name, o.s.Account, o.s.Region)
	if err = o.n.Check(); err != nil {
		return nil, err
	}
	if o.n, o.bucketHead, err = cloud.ResolveBucketHead(ctx, o.s.S3, o.n); err != nil {
		return nil, err
	}
	if o.home, err = cloud.FindHome(ctx, o.s.IAM, o.n); err != nil {
		return nil, err
	}
	if err = o.home.CheckRegion(st.Name, o.s.Region); err != nil {
		return nil, err
	}
	if o.secrets, err = o.dir.LoadFor(o.s.Account, o.s.Region); err != nil {
		err = cloud.AsUsage(err)
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
