package awsmodel

// Documented rules on the texts mlstack sends that the service models do
// not carry (moto checks none of them): the characters of EC2 security
// group texts and of tag values.

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// sgTextChars are the characters EC2 allows, in a VPC, in a security
// group's name, its description and a rule's description.
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_IpRange.html
const sgTextChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-:/()#,@[]+=&;{}!$*"

// SGTextMax is the longest security group text EC2 accepts.
const SGTextMax = 255

// SGTextAllowed reports whether EC2 accepts r in a security group text.
func SGTextAllowed(r rune) bool { return r < utf8.RuneSelf && strings.ContainsRune(sgTextChars, r) }

// SecurityGroupText is EC2's answer to a security group text in a VPC:
// nil, or InvalidParameterValue as EC2 words it. field is the request's
// parameter: GroupName, GroupDescription, or a rule's Description.
func SecurityGroupText(field, value string) error {
	bad := strings.IndexFunc(value, func(r rune) bool { return !SGTextAllowed(r) })
	if bad < 0 && len(value) <= SGTextMax {
		return nil
	}
	what := "rule description"
	switch field {
	case "GroupName":
		what = "security group name"
	case "GroupDescription":
		what = "security group description"
	}
	return badRequest("InvalidParameterValue", fmt.Sprintf("Value (%s) for parameter %s is invalid. "+
		"Invalid %s. Valid descriptions are strings less than 256 characters from the following set:  a-zA-Z0-9. _-:/()#,@[]+=&;{}!$*",
		value, field, what))
}

// TagValueMax is the longest tag value IAM, S3, SSM and RDS accept.
const TagValueMax = 256

// TagValueAllowed reports whether IAM, S3, SSM and RDS accept r in a tag
// value: letters, separators and digits of any script, and _ . : / = + - @.
// https://docs.aws.amazon.com/IAM/latest/APIReference/API_Tag.html
// https://docs.aws.amazon.com/AmazonS3/latest/API/API_Tag.html
// https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_Tag.html
// https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_Tag.html
func TagValueAllowed(r rune) bool {
	return unicode.IsLetter(r) || unicode.In(r, unicode.Z) || unicode.IsNumber(r) || strings.ContainsRune("_.:/=+-@", r)
}

// TagValue is the answer of a service (by its signing name) to the value
// of the n-th tag (from 1) of a request: nil, or the service's refusal.
// EC2's tag values may hold any character, so it is not checked here.
func TagValue(service string, n int, value string) error {
	if service == "ec2" {
		return nil
	}
	if strings.IndexFunc(value, func(r rune) bool { return !TagValueAllowed(r) }) < 0 && utf8.RuneCountInString(value) <= TagValueMax {
		return nil
	}
	const pattern = `[\p{L}\p{Z}\p{N}_.:/=+\-@]*`
	switch service {
	case "iam":
		return badRequest("ValidationError", fmt.Sprintf("1 validation error detected: Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: "+
			"Member must satisfy regular expression pattern: %s", value, n, pattern))
	case "s3":
		return badRequest("InvalidTag", "The TagValue you have provided is invalid")
	case "ssm":
		return badRequest("ValidationException", fmt.Sprintf("1 validation error detected: Value '%s' at 'tags.%d.member.value' failed to satisfy constraint: "+
			"Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$", value, n))
	}
	return badRequest("InvalidParameterValue", fmt.Sprintf("Invalid tag value %q: tag values may hold only letters, digits, spaces and _ . : / = + - @, at most %d characters", value, TagValueMax))
}
