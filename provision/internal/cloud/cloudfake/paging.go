package cloudfake

// The fake pages its lists as AWS does (internal/awsmodel): at each
// operation's page size, with opaque next tokens bound to the request, so
// code that ignores a token misses items here as it would on AWS.

import (
	"cmp"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/mlstack/mlstack/internal/awsmodel"
)

// page is one page of items for the request in of the operation: after the
// request's token (which must be one this fake handed out for the same
// request), at AWS's page size for the request's limit, or at f.PageSize
// when a test set it smaller (many pages, cheaply). key orders the items
// and marks where the next page starts. Called with f.Mu held.
func page[T any](f *FakeAWS, service, op string, in any, items []T, key func(T) string) ([]T, *string, error) {
	p, ok := awsmodel.PaginatedOp(service, op)
	if !ok {
		panic(fmt.Sprintf("cloudfake: %s %s is not paginated", service, op))
	}
	token, limit := requestPaging(in, p)
	size := f.pageSize(service, op, limit)
	got, next, err := awsmodel.Page(f.pager, service, op, scopeOf(in, p), items, key, size, token)
	if err != nil {
		return nil, nil, modelErr(err)
	}
	if next == "" {
		return got, nil, nil
	}
	return got, aws.String(next), nil
}

// pageSize is AWS's page size for the request's limit (0: every item), or
// f.PageSize when a test set it smaller.
func (f *FakeAWS) pageSize(service, op string, limit int) int {
	size := awsmodel.PageSize(service, op, limit)
	if f.PageSize > 0 && (size == 0 || f.PageSize < size) {
		size = f.PageSize
	}
	return size
}

// requestPaging reads the request's token and limit by the names botocore
// gives them.
func requestPaging(in any, p awsmodel.Paginated) (token string, limit int) {
	v := reflect.ValueOf(in).Elem()
	if t, ok := v.FieldByName(p.InputTokens[0]).Interface().(*string); ok {
		token = aws.ToString(t)
	}
	if p.LimitKey != "" {
		if l, ok := v.FieldByName(p.LimitKey).Interface().(*int32); ok {
			limit = int(aws.ToInt32(l))
		}
	}
	return token, limit
}

// scopeOf is the request without its token and limit: what a token is bound
// to (AWS refuses a token brought to another listing).
func scopeOf(in any, p awsmodel.Paginated) string {
	b, _ := json.Marshal(in)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	for _, t := range p.InputTokens {
		delete(m, t)
	}
	delete(m, p.LimitKey)
	b, _ = json.Marshal(m) // map keys sorted: one scope per request
	return string(b)
}

// itself keys a list of names.
func itself(s string) string { return s }

func policyARN(p iamtypes.AttachedPolicy) string { return aws.ToString(p.PolicyArn) }

// listUploads is one page of a bucket's unfinished uploads, in (key,
// upload id) order after S3's two markers, which are a key and an upload
// id, not opaque tokens. Called with f.Mu held.
func (f *FakeAWS) listUploads(in *s3.ListMultipartUploadsInput, uploads []FakeUpload) *s3.ListMultipartUploadsOutput {
	ups := slices.SortedFunc(slices.Values(uploads), func(a, b FakeUpload) int {
		return cmp.Or(strings.Compare(a.Key, b.Key), strings.Compare(a.ID, b.ID))
	})
	if in.KeyMarker != nil {
		mk, mid := aws.ToString(in.KeyMarker), aws.ToString(in.UploadIdMarker)
		ups = slices.DeleteFunc(ups, func(u FakeUpload) bool { return u.Key < mk || u.Key == mk && (mid == "" || u.ID <= mid) })
	}
	out := &s3.ListMultipartUploadsOutput{Bucket: in.Bucket, IsTruncated: aws.Bool(false)}
	if size := f.pageSize("s3", "ListMultipartUploads", int(aws.ToInt32(in.MaxUploads))); size > 0 && len(ups) > size {
		ups = ups[:size]
		last := ups[size-1]
		out.IsTruncated, out.NextKeyMarker, out.NextUploadIdMarker = aws.Bool(true), aws.String(last.Key), aws.String(last.ID)
	}
	for _, u := range ups {
		out.Uploads = append(out.Uploads, s3types.MultipartUpload{Key: aws.String(u.Key), UploadId: aws.String(u.ID)})
	}
	return out
}
