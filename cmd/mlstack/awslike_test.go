package main

// The AWS-like layer of the test proxy: where moto is kinder than AWS, it
// answers as AWS documents. It sits between the fault injector and moto,
// so a lost response (a fault) still hits the same idempotency as on EC2.
// The rules are internal/awsmodel's, shared with provision's in-memory
// fake: this layer parses the operation and the ids the rule needs from
// HTTP, asks the model, and answers in the service's format or forwards.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// awsLike holds the behaviours of AWS that moto lacks. By default it
// models only what every AWS account does: RunInstances is idempotent per
// client token (moto launches again), and RDS takes its time.
type awsLike struct {
	mu    sync.Mutex
	rules rulesLog // the service models' refusals (awsrules_test.go)
	// tokens is the model's client-token idempotency; launches keeps
	// RunInstances answers by instance id, to replay.
	tokens   awsmodel.ClientTokens
	launches map[string][]byte
	// consistency: with For set, a new instance, group, key pair, bucket or
	// instance profile is unknown for its first uses.
	consistency awsmodel.Consistency
	// busyNames: with For set, CreateBucket of a name deleted a moment ago
	// answers OperationAborted For times.
	busyNames awsmodel.BusyNames
	// plan: the free plan (FreeTier) and a region without t2 (NoT2).
	plan awsmodel.Plan
	// noPublicIP: default subnets map no public address; an instance launched
	// without asking for one has none.
	noPublicIP bool
	private    map[string]bool // instance ids without a public address
	// strictTokens: a long-term key (AKIA…) signing with a session token is
	// refused, as AWS does (the token belongs to other credentials).
	strictTokens bool
	// terms: with Slow set, after TerminateInstances an instance shows
	// pending for Stale describes, then shutting-down for Slow more, then
	// it is terminated (in moto: the call kept in winding is sent then).
	terms   awsmodel.Terminations
	winding map[string]*heldCall
	// terminated: instances a TerminateInstances answered for (see
	// terminateAgain).
	terminated   map[string]bool
	optInRegion  string // STS in this region refuses the caller: not enabled
	noDefaultVPC bool
	injected     map[string]int
	// rds is the model's RDS: its slow states and the classes it offers.
	rds awsmodel.RDS
	// dbMembers are the DBInstance elements moto answered last for the
	// databases being deleted (moto deletes at once).
	dbMembers map[string]string
	// pager pages the lists moto answers whole (awslike_pages_test.go).
	pager *awsmodel.Pager
	// noRegionalNamespace: S3 here lacks the account-regional namespace;
	// noTagResource: the caller may not s3:TagResource (moto has neither).
	noRegionalNamespace, noTagResource bool
}

// heldCall is a request to send to moto later.
type heldCall struct {
	req  *http.Request
	body []byte
}

func newAWSLike() *awsLike {
	return &awsLike{launches: map[string][]byte{}, private: map[string]bool{}, winding: map[string]*heldCall{},
		terminated: map[string]bool{}, injected: map[string]int{}, rds: awsmodel.RDS{Slow: 2}, dbMembers: map[string]string{},
		pager: awsmodel.NewPager()}
}

// set changes the knobs while requests may be in flight.
func (a *awsLike) set(change func(a *awsLike)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	change(a)
}

// count is how often the named behaviour answered instead of moto.
func (a *awsLike) count(what string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.injected[what]
}

// handler wraps the proxy to moto.
func (a *awsLike) handler(moto http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		req.Body = io.NopCloser(bytes.NewReader(body))
		a.settle(moto)
		if a.checkRules(w, req, body) {
			return
		}
		svc := service(req)
		form, _ := url.ParseQuery(string(body))
		for k, v := range req.URL.Query() {
			form[k] = append(form[k], v...)
		}
		if form.Get("Action") == "RunInstances" && a.replay(w, req, form, moto) {
			return
		}
		if a.refuse(w, req, svc, form, body) || a.rdsAnswer(w, svc, form) {
			return
		}
		a.forward(w, req, svc, form, body, moto)
	})
}

func (a *awsLike) note(what string) {
	a.injected[what]++
}

// refuse answers requests that AWS would refuse, before moto sees them.
func (a *awsLike) refuse(w http.ResponseWriter, req *http.Request, svc string, form url.Values, body []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	action := form.Get("Action")
	key, _, _ := strings.Cut(credentialOf(req), "/")
	switch {
	case a.strictTokens && strings.HasPrefix(key, "AKIA") && (req.Header.Get("X-Amz-Security-Token") != "" || req.URL.Query().Get("X-Amz-Security-Token") != ""):
		a.note("session token with a long-term key")
		if svc == "s3" {
			writeAWSError(w, svc, http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid.")
		} else {
			writeAWSError(w, svc, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		}
		return true
	case svc == "sts" && a.optInRegion != "" && strings.Contains(credentialOf(req), "/"+a.optInRegion+"/"):
		a.note("opt-in region")
		writeAWSError(w, svc, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return true
	case action == "RunInstances" && a.refuseRun(w, form):
		return true
	case pagesIAM(svc, form) && a.badMarker(form) != nil:
		a.note("IAM marker refused")
		writeModelError(w, svc, a.badMarker(form))
		return true
	case svc == "s3" && req.Method == http.MethodPut && len(strings.Trim(req.URL.Path, "/")) > 0 && !strings.Contains(strings.Trim(req.URL.Path, "/"), "/") && len(req.URL.RawQuery) == 0:
		if err := a.busyNames.Create(strings.Trim(req.URL.Path, "/")); err != nil {
			a.note("bucket name busy")
			writeModelError(w, svc, err)
			return true
		}
		if err := a.createBucketRules(req, body); err != nil {
			writeModelError(w, svc, err)
			return true
		}
	}
	if u, ok := a.unseenIn(req, svc, form, body); ok && !describesByFilter(form) {
		a.note("new " + string(u.Kind) + " not found yet")
		writeModelError(w, svc, a.consistency.Use(u.Kind, u.ID))
		return true
	}
	return false
}

// createBucketRules is S3's answer to a CreateBucket where it lacks the
// account-regional namespace, or from a caller without s3:TagResource
// that sends tags. The caller holds mu.
func (a *awsLike) createBucketRules(req *http.Request, body []byte) error {
	region := regionOf(req)
	if err := awsmodel.BucketNamespace(region, req.Header.Get("x-amz-bucket-namespace"), a.noRegionalNamespace); err != nil {
		a.note("regional namespace refused")
		return err
	}
	if err := awsmodel.CreateBucketTags(!a.noTagResource, bytes.Count(body, []byte("<Tag>"))); err != nil {
		a.note("tags at creation denied")
		return err
	}
	return nil
}

// refuseRun is RunInstances on a free plan, in a region without t2, or
// with a client token answered before.
func (a *awsLike) refuseRun(w http.ResponseWriter, form url.Values) bool {
	typ := form.Get("InstanceType")
	err := a.plan.RunInstances(typ)
	switch {
	case err == nil:
		return false
	case !a.plan.Offered(typ):
		a.note("t2 not offered")
	default:
		a.note("free plan refusal")
	}
	writeModelError(w, "ec2", err)
	return true
}

// replay answers a client token EC2 has seen with that launch's instance,
// in the state it is in now (moto would launch again).
func (a *awsLike) replay(w http.ResponseWriter, req *http.Request, form url.Values, moto http.Handler) bool {
	a.mu.Lock()
	id, ok := a.tokens.Seen(form.Get("ClientToken"))
	cached := a.launches[id]
	a.mu.Unlock()
	if !ok {
		return false
	}
	q := url.Values{"Action": {"DescribeInstances"}, "Version": {form.Get("Version")}, "InstanceId.1": {id}}.Encode()
	d := req.Clone(req.Context())
	d.Body, d.ContentLength = io.NopCloser(strings.NewReader(q)), int64(len(q))
	rec := httptest.NewRecorder()
	moto.ServeHTTP(rec, d)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.note("client token replayed")
	now := string(a.describeInstances(url.Values{}, rec.Body.Bytes()))
	state := stateRe.FindString(now)
	if state == "" { // gone from EC2's listing: long terminated
		state = `<instanceState><code>48</code><name>terminated</name></instanceState>`
	}
	w.Header().Set("Content-Type", "text/xml")
	_, _ = w.Write(stateRe.ReplaceAll(cached, []byte(state)))
	return true
}

// unseenIn finds a new id the request uses while the model still has it
// unknown.
func (a *awsLike) unseenIn(req *http.Request, svc string, form url.Values, body []byte) (awsmodel.ID, bool) {
	text := req.URL.RawQuery + "&" + string(body)
	bucket, _, _ := strings.Cut(strings.TrimPrefix(req.URL.Path, "/"), "/")
	run := form.Get("Action") == "RunInstances"
	for _, u := range a.consistency.Pending() {
		var uses bool
		switch u.Kind {
		case awsmodel.Bucket: // CreateBucket again gets BucketAlreadyOwnedByYou, from moto too
			uses = svc == "s3" && bucket == u.ID && (req.Method != http.MethodPut || req.URL.RawQuery != "")
		case awsmodel.KeyPair: // a name, shared with the group: only where it names the key
			uses = (run && form.Get("KeyName") == u.ID) || form.Get("KeyName.1") == u.ID
		case awsmodel.Profile: // a name too, prefixed by the key pair's
			uses = run && form.Get("IamInstanceProfile.Name") == u.ID
		default:
			uses = svc == "ec2" && strings.Contains(text, u.ID)
		}
		if uses {
			return u, true
		}
	}
	return awsmodel.ID{}, false
}

// describesByFilter: a listing by filter leaves an unknown id out (see
// hideUnseen) instead of failing.
func describesByFilter(form url.Values) bool {
	return form.Get("Action") == "DescribeInstances" && form.Get("InstanceId.1") == ""
}

// writeModelError answers the model's error in the service's format.
func writeModelError(w http.ResponseWriter, service string, err error) {
	e, ok := err.(*awsmodel.Error)
	if !ok {
		e = &awsmodel.Error{Code: "InternalFailure", Message: err.Error(), Status: http.StatusInternalServerError}
	}
	writeAWSError(w, service, e.Status, e.Code, e.Message)
}

// credentialOf is KEY/DATE/REGION/SERVICE/aws4_request from SigV4.
func credentialOf(req *http.Request) string {
	auth := req.Header.Get("Authorization")
	if i := strings.Index(auth, "Credential="); i >= 0 {
		return strings.SplitN(auth[i+len("Credential="):], ",", 2)[0]
	}
	return req.URL.Query().Get("X-Amz-Credential")
}

// forward sends the request to moto and makes the answer AWS-like.
func (a *awsLike) forward(w http.ResponseWriter, req *http.Request, svc string, form url.Values, body []byte, moto http.Handler) {
	action := form.Get("Action")
	if action == "TerminateInstances" && a.delayTermination(w, req, form, body) {
		return
	}
	rec := httptest.NewRecorder()
	moto.ServeHTTP(rec, req)
	out := rec.Body.Bytes()
	a.mu.Lock()
	if rec.Code < 300 {
		out = a.afterCall(req, svc, form, out)
		if svc == "rds" {
			out = a.rdsAfter(form, out)
		}
	} else if again := a.terminateAgain(form, out); again != nil {
		rec.Code, out = http.StatusOK, again
	} else if gone := a.rdsDeleting(svc, form); gone != nil {
		rec.Code, out = http.StatusOK, gone
	}
	a.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

var (
	instanceIDRe = regexp.MustCompile(`<instanceId>(i-[0-9a-f]+)</instanceId>`)
	groupIDRe    = regexp.MustCompile(`<groupId>(sg-[0-9a-f]+)</groupId>`)
	keyNameRe    = regexp.MustCompile(`<keyName>([^<]+)</keyName>`)
	// instanceTypeRe reads an offering's type.
	instanceTypeRe = regexp.MustCompile(`<instanceType>([^<]+)</instanceType>`)
)

// afterCall remembers what a successful call created or deleted, and edits
// answers that moto gives differently from AWS.
func (a *awsLike) afterCall(req *http.Request, svc string, form url.Values, out []byte) []byte {
	switch action := form.Get("Action"); {
	case action == "RunInstances":
		id := firstMatch(instanceIDRe, out)
		a.tokens.Launched(form.Get("ClientToken"), id)
		a.launches[id] = out
		a.consistency.Created(awsmodel.Instance, id)
		if a.noPublicIP && form.Get("NetworkInterface.1.AssociatePublicIpAddress") != "true" {
			a.private[id] = true
		}
	case action == "TerminateInstances":
		for _, m := range instanceIDRe.FindAllSubmatch(out, -1) {
			a.terminated[string(m[1])] = true
		}
	case action == "CreateSecurityGroup":
		a.consistency.Created(awsmodel.Group, firstMatch(groupIDRe, out))
	case action == "ImportKeyPair":
		a.consistency.Created(awsmodel.KeyPair, firstMatch(keyNameRe, out))
	case action == "CreateInstanceProfile":
		a.consistency.Created(awsmodel.Profile, form.Get("InstanceProfileName"))
	case action == "DescribeInstances":
		return a.describeInstances(form, out)
	case pagesIAM(svc, form):
		return a.pageIAM(form, out)
	case action == "DescribeInstanceTypeOfferings":
		return dropItems(out, "instanceTypeOfferingSet", func(item string) bool {
			typ := firstMatch(instanceTypeRe, []byte(item))
			return !a.plan.Offered(typ) || !awsmodel.RegionOffers(regionOf(req), typ)
		})
	case action == "DescribeSubnets" && a.noPublicIP:
		return bytes.ReplaceAll(out, []byte("<mapPublicIpOnLaunch>true<"), []byte("<mapPublicIpOnLaunch>false<"))
	case action == "DescribeVpcs" && a.noDefaultVPC:
		return dropItems(out, "vpcSet", func(item string) bool { return strings.Contains(item, "<isDefault>true<") })
	case action == "DescribeSubnets" && a.noDefaultVPC:
		return dropItems(out, "subnetSet", func(item string) bool { return strings.Contains(item, "<defaultForAz>true<") })
	case svc == "s3" && req.Method == http.MethodPut && req.URL.RawQuery == "" && strings.Count(strings.Trim(req.URL.Path, "/"), "/") == 0:
		a.consistency.Created(awsmodel.Bucket, strings.Trim(req.URL.Path, "/"))
	case svc == "s3" && req.Method == http.MethodDelete && req.URL.RawQuery == "" && strings.Count(strings.Trim(req.URL.Path, "/"), "/") == 0:
		a.busyNames.Deleted(strings.Trim(req.URL.Path, "/"))
	}
	return out
}

func firstMatch(re *regexp.Regexp, b []byte) string {
	if m := re.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

var (
	stateRe     = regexp.MustCompile(`<instanceState><code>\d+</code><name>[a-z-]+</name></instanceState>`)
	publicDNSRe = regexp.MustCompile(`<dnsName>[^<]*</dnsName>|<ipAddress>[^<]*</ipAddress>|<association>.*?</association>`)
)

// describeInstances hides instances EC2 does not list yet, shows the state
// of a termination in progress, and the missing public address.
func (a *awsLike) describeInstances(form url.Values, out []byte) []byte {
	states := filterValuesOf(form, "instance-state-name")
	return dropItems(out, "reservationSet", func(item string) bool {
		if !a.consistency.Listed(firstMatch(instanceIDRe, []byte(item))) {
			a.note("new instance not listed yet")
			return true
		}
		return false
	}, func(item string) string {
		id := firstMatch(instanceIDRe, []byte(item))
		if a.private[id] {
			item = publicDNSRe.ReplaceAllString(item, "")
		}
		if state := a.terms.Show(id); state != "" {
			item = stateRe.ReplaceAllString(item, fmt.Sprintf(`<instanceState><code>%d</code><name>%s</name></instanceState>`, stateCodes[state], state))
			if len(states) > 0 && !containsStr(states, state) {
				return "" // a filter by state would not list it now
			}
		}
		return item
	})
}

func containsStr(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// filterValuesOf are the values of the named EC2 query filter.
func filterValuesOf(form url.Values, name string) []string {
	for i := 1; ; i++ {
		n := form.Get(fmt.Sprintf("Filter.%d.Name", i))
		if n == "" {
			return nil
		}
		if n != name {
			continue
		}
		var out []string
		for j := 1; ; j++ {
			v := form.Get(fmt.Sprintf("Filter.%d.Value.%d", i, j))
			if v == "" {
				return out
			}
			out = append(out, v)
		}
	}
}

// terminateAgain is EC2's answer to a TerminateInstances of instances
// already terminated: success, state terminated (the call is idempotent;
// the SDK repeats it when an answer is lost). moto instead answers
// InvalidNetworkInterfaceID.NotFound for an instance whose interface went
// with it. nil: moto's answer stands. The caller holds mu.
func (a *awsLike) terminateAgain(form url.Values, out []byte) []byte {
	if form.Get("Action") != "TerminateInstances" || !bytes.Contains(out, []byte("InvalidNetworkInterfaceID.NotFound")) {
		return nil
	}
	var items strings.Builder
	for i := 1; form.Get(fmt.Sprintf("InstanceId.%d", i)) != ""; i++ {
		id := form.Get(fmt.Sprintf("InstanceId.%d", i))
		if !a.terminated[id] {
			return nil
		}
		fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><currentState><code>48</code><name>terminated</name></currentState><previousState><code>48</code><name>terminated</name></previousState></item>`, id)
	}
	a.note("repeated termination")
	return []byte(`<?xml version="1.0" encoding="UTF-8"?><TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>aws-like</requestId><instancesSet>` +
		items.String() + `</instancesSet></TerminateInstancesResponse>`)
}

// delayTermination answers TerminateInstances as EC2 does while the
// instances wind down; moto terminates only when the delay is over.
func (a *awsLike) delayTermination(w http.ResponseWriter, req *http.Request, form url.Values, body []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.terms.Slow == 0 {
		return false
	}
	var items strings.Builder
	for i := 1; form.Get(fmt.Sprintf("InstanceId.%d", i)) != ""; i++ {
		id := form.Get(fmt.Sprintf("InstanceId.%d", i))
		if _, started := a.terms.Terminate(id); started {
			a.winding[id] = &heldCall{req: req.Clone(context.Background()), body: body}
			a.note("slow termination")
		}
		fmt.Fprintf(&items, `<item><instanceId>%s</instanceId><currentState><code>32</code><name>shutting-down</name></currentState><previousState><code>16</code><name>running</name></previousState></item>`, id)
	}
	w.Header().Set("Content-Type", "text/xml")
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><TerminateInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>aws-like</requestId><instancesSet>%s</instancesSet></TerminateInstancesResponse>`, items.String())
	return true
}

// stateCodes are EC2's codes of the states a termination shows.
var stateCodes = map[string]int{awsmodel.StatePending: 0, awsmodel.StateShuttingDown: 32}

// settle terminates in moto what the model has done winding down.
func (a *awsLike) settle(moto http.Handler) {
	a.mu.Lock()
	var due []*heldCall
	for _, id := range a.terms.Due() {
		if t := a.winding[id]; t != nil {
			due = append(due, t)
			delete(a.winding, id)
		}
	}
	a.mu.Unlock()
	for _, t := range due {
		t.req.Body = io.NopCloser(bytes.NewReader(t.body))
		moto.ServeHTTP(httptest.NewRecorder(), t.req)
	}
}

// dropItems edits the <item> children of the named set: drop removes an
// item; edit (optional) rewrites one ("" removes it too).
func dropItems(out []byte, set string, drop func(item string) bool, edit ...func(item string) string) []byte {
	s := string(out)
	open, end := "<"+set+">", "</"+set+">"
	i, j := strings.Index(s, open), strings.LastIndex(s, end)
	if i < 0 || j < 0 {
		return out
	}
	inner := s[i+len(open) : j]
	var kept strings.Builder
	for _, item := range topItems(inner) {
		if drop(item) {
			continue
		}
		for _, e := range edit {
			item = e(item)
		}
		kept.WriteString(item)
	}
	return []byte(s[:i+len(open)] + kept.String() + s[j:])
}

// topItems splits a set's content into its top-level <item> elements.
func topItems(s string) []string {
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "<item>"):
			if depth == 0 {
				start = i
			}
			depth++
			i += len("<item>")
		case strings.HasPrefix(s[i:], "</item>"):
			depth--
			i += len("</item>")
			if depth == 0 {
				items = append(items, s[start:i])
			}
		default:
			i++
		}
	}
	return items
}
