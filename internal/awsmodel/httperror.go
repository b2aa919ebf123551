package awsmodel

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"strings"
)

// WriteError answers an error in the format of the service (by its
// signing name), so an SDK reads the code from it: JSON for SSM, S3's
// <Error>, EC2's <Response><Errors>, else the query protocol's
// <ErrorResponse>. The test proxies in front of moto answer with it.
func WriteError(w http.ResponseWriter, service string, status int, code, message string) {
	if service == "ssm" { // the JSON protocol
		b, _ := json.Marshal(map[string]string{"__type": code, "message": message})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	c, m := xmlText(code), xmlText(message) // a refused value may hold < or &
	var body string
	switch service {
	case "s3":
		body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + c + `</Code><Message>` + m + `</Message><RequestId>fault</RequestId></Error>`
	case "ec2":
		body = `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>` + c + `</Code><Message>` + m + `</Message></Error></Errors><RequestID>fault</RequestID></Response>`
	default: // iam, rds, sts
		body = `<ErrorResponse><Error><Type>Sender</Type><Code>` + c + `</Code><Message>` + m + `</Message></Error><RequestId>fault</RequestId></ErrorResponse>`
	}
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

func xmlText(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
