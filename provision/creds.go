package provision

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// RotateOptions tune `creds rotate`.
type RotateOptions struct {
	// TrackingURI overrides the server address (tests reach a local server).
	TrackingURI string
	// SkipMLflow rotates only the AWS key (the server is down or unreachable).
	SkipMLflow bool
}

// RotateCreds gives the stack a new access key and MLflow password and
// rewrites the env file. The old key is deleted only after the new one
// works; the old password stops working once the server accepted the new.
// From a machine without local secrets it recovers the current MLflow
// password from the instance's user-data (an admin identity can read it).
func RotateCreds(ctx context.Context, c Config, o RotateOptions) error {
	if err := c.Validate(false); err != nil {
		return err
	}
	log := newProgress(c.Log)
	op, err := openStack(ctx, &c, log, true)
	if err != nil {
		return err
	}
	defer op.release()
	s, n, sd, st := op.s, op.n, op.sd, op.st
	u, err := findUser(ctx, s.iam, n, bucketPolicy(s.partition, n.Bucket))
	if err != nil {
		return err
	}
	if !u.exists {
		return fmt.Errorf("stack %s has no IAM user %s: run `mlstack up --stack %s`", c.Stack, n.User, c.Stack)
	}
	if len(u.keys) >= 2 {
		return fmt.Errorf("IAM user %s already has %d access keys (the limit is 2): run `mlstack up` to remove stray ones first", n.User, len(u.keys))
	}
	insts, err := findInstances(ctx, s.ec2, n.Stack)
	if err != nil {
		return err
	}
	uri := o.TrackingURI
	if uri == "" && len(insts) > 0 && trackingHost(&insts[0]) != "" {
		uri = fmt.Sprintf("http://%s:%d", trackingHost(&insts[0]), mlflowPort)
	}
	if st == nil {
		st = &State{Stack: c.Stack, Account: s.account, Region: s.region, MLflowUser: mlflowUser}
	}

	// 1. The AWS key: create, save, prove it works, then delete the old ones.
	log.step("creating a new access key for %s", n.User)
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	out, err := s.iam.CreateAccessKey(kctx, &iam.CreateAccessKeyInput{UserName: aws.String(n.User)})
	if err != nil {
		return fmt.Errorf("creating access key for %s: %w", n.User, err)
	}
	next := *st
	next.AccessKeyID, next.SecretAccessKey = aws.ToString(out.AccessKey.AccessKeyId), aws.ToString(out.AccessKey.SecretAccessKey)
	if err := sd.save(&next); err != nil {
		_, derr := s.iam.DeleteAccessKey(kctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: out.AccessKey.AccessKeyId})
		return fmt.Errorf("saving the new access key: %w (removing it again: %v)", err, derr)
	}
	*st = next
	log.step("checking that the new key can use bucket %s", n.Bucket)
	if err := probeKey(ctx, s, n.Bucket, st.AccessKeyID, st.SecretAccessKey); err != nil {
		return fmt.Errorf("the new access key %s does not work yet (%w); the old key was kept: run `mlstack creds rotate` again later", st.AccessKeyID, err)
	}
	for _, old := range u.keys {
		log.step("deleting old access key %s", old)
		if _, err := s.iam.DeleteAccessKey(ctx, &iam.DeleteAccessKeyInput{UserName: aws.String(n.User), AccessKeyId: aws.String(old)}); err != nil && !hasCode(err, "NoSuchEntity") {
			return fmt.Errorf("deleting old access key %s: %w", old, err)
		}
	}

	// 2. The MLflow password, through the server's own API.
	var mlErr error
	switch {
	case o.SkipMLflow:
		log.warn("MLflow password not rotated (--skip-mlflow)")
	case uri == "":
		mlErr = fmt.Errorf("no running instance: MLflow password not rotated")
	default:
		current := st.MLflowPassword
		if current == "" && len(insts) > 0 {
			if current, err = passwordFromUserData(ctx, s.ec2, aws.ToString(insts[0].InstanceId)); err != nil {
				mlErr = err
			}
		}
		if mlErr == nil {
			mlErr = rotateMLflowPassword(ctx, sd, st, uri, current, log)
		}
	}
	if uri != "" {
		if err := writeEnv(sd, envVars(st, uri, s.region, s.s3Endpoint)); err != nil {
			return err
		}
		log.step("rewrote %s", sd.EnvFile())
	}
	if mlErr != nil {
		return fmt.Errorf("access key rotated; %w", mlErr)
	}
	log.step("credentials of stack %s rotated", c.Stack)
	return nil
}

// probeKey lists the bucket with the new key until it works: a new key
// takes some seconds to be accepted everywhere.
func probeKey(ctx context.Context, s *session, bucket, id, secret string) error {
	client := s3.NewFromConfig(s.cfg, func(o *s3.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(id, secret, "")
		o.UsePathStyle = s.s3Endpoint != ""
	})
	return retryOn(ctx, time.Minute, func(err error) bool {
		return hasCode(err, "InvalidAccessKeyId", "AccessDenied", "SignatureDoesNotMatch")
	}, nil,
		func() error {
			_, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), MaxKeys: aws.Int32(1)})
			return err
		})
}

// adminPasswordLine finds the admin password in the basic_auth.ini that
// cloudinit renders into the user-data (our passwords are alphanumeric).
var adminPasswordLine = regexp.MustCompile(`(?m)^\s*admin_password = ([A-Za-z0-9]+)\s*$`)

// passwordFromUserData recovers the MLflow admin password the instance was
// booted with. It is only right until someone rotates it.
func passwordFromUserData(ctx context.Context, api *ec2.Client, id string) (string, error) {
	out, err := api.DescribeInstanceAttribute(ctx, &ec2.DescribeInstanceAttributeInput{InstanceId: aws.String(id), Attribute: ec2types.InstanceAttributeNameUserData})
	if err != nil {
		return "", fmt.Errorf("reading user-data of %s to recover the MLflow password: %w", id, err)
	}
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(out.UserData.Value))
	if err != nil {
		return "", fmt.Errorf("user-data of %s is not base64", id)
	}
	m := adminPasswordLine.FindSubmatch(raw)
	if m == nil {
		return "", errors.New("the MLflow admin password is not in the instance's user-data")
	}
	return string(m[1]), nil
}

// rotateMLflowPassword sets a new admin password with the current one,
// checks the new one works, and saves it.
func rotateMLflowPassword(ctx context.Context, sd stateDir, st *State, uri, current string, log *progress) error {
	newPw, err := randomSecret(32)
	if err != nil {
		return err
	}
	log.step("setting a new MLflow admin password on %s", uri)
	// current_password: MLflow 3.x requires it when a user changes its own password.
	body, _ := json.Marshal(map[string]string{"username": st.MLflowUser, "password": newPw, "current_password": current})
	if err := mlflowCall(ctx, http.MethodPatch, uri+"/api/2.0/mlflow/users/update-password", st.MLflowUser, current, body); err != nil {
		return fmt.Errorf("MLflow password not rotated: %w", err)
	}
	// Saved before the check: the server already switched to it.
	next := *st
	next.MLflowPassword = newPw
	if err := sd.save(&next); err != nil {
		return err
	}
	*st = next
	if err := mlflowCall(ctx, http.MethodGet, uri+"/api/2.0/mlflow/users/get?username="+st.MLflowUser, st.MLflowUser, newPw, nil); err != nil {
		return fmt.Errorf("the new MLflow password was set but does not work: %w", err)
	}
	return nil
}

// mlflowCall makes one authenticated MLflow REST call. Errors carry the
// status, never the credentials.
func mlflowCall(ctx context.Context, method, url, user, password string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.SetBasicAuth(user, password)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, strings.SplitN(url, "?", 2)[0], err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s", method, strings.SplitN(url, "?", 2)[0], resp.Status)
	}
	return nil
}
