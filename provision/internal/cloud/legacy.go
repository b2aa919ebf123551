package cloud

// Stacks made before TLS and SSM (issue 11): their server speaks plain HTTP
// and reads its secrets from its user-data. They keep working as they are:
// mlstack talks HTTP to them and says what moving them over takes.

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/mlstack/mlstack/cloudinit"
	"github.com/mlstack/mlstack/provision/local"
)

// IsLegacy reports whether inst was launched by an earlier mlstack, judged
// by its user-data, which cannot change while it runs (unlike a tag).
func IsLegacy(ctx context.Context, api instanceAPI, inst *ec2types.Instance) (bool, error) {
	doc, err := UserData(ctx, api, inst)
	return IsLegacyUserData(doc), err
}

// UserData is inst's user-data, unpacked (nil when it has none).
func UserData(ctx context.Context, api instanceAPI, inst *ec2types.Instance) ([]byte, error) {
	raw, err := instanceUserData(ctx, api, aws.ToString(inst.InstanceId))
	if err != nil || len(raw) == 0 {
		return nil, err
	}
	doc, err := cloudinit.Decode(raw)
	if err != nil {
		return nil, fmt.Errorf("user-data of %s: %w", aws.ToString(inst.InstanceId), err)
	}
	return doc, nil
}

// LegacyURI is where an earlier server listens: plain HTTP.
func LegacyURI(inst *ec2types.Instance) string {
	if h := TrackingHost(inst); h != "" {
		return "http://" + h + ":5000"
	}
	return ""
}

// CertPathFor is the pinned certificate the env file names: none for a
// plain-HTTP server.
func CertPathFor(dir local.Dir, uri string) string {
	if strings.HasPrefix(uri, "https://") {
		return dir.ServerCertFile()
	}
	return ""
}

// LegacyWarning says what an earlier stack lacks and what moves it over.
func LegacyWarning(id, down, up string) string {
	return fmt.Sprintf("instance %s was made by an earlier mlstack: its server speaks plain HTTP (the password crosses "+
		"the network in clear text, and nothing proves the server is yours) and its user-data holds the MLflow admin "+
		"password and the Flask secret key (readable with ec2:DescribeInstanceAttribute). It keeps working as it is. "+
		"To move the stack over (pinned TLS, secrets in SSM, a working web UI), make it again: `%s`, then `%s`; "+
		"this deletes its runs and artifacts, so export what you need first", id, down, up)
}
