// Command trimmodels writes internal/awsmodel/botocore/*.json: the parts
// of botocore's service models (the JSON AWS's SDKs are generated from)
// that the requests mlstack sends are checked against — the input shapes
// of the operations it calls, with their constraints and wire names.
//
//	go run ./internal/awsmodel/cmd/trimmodels -botocore DIR -out internal/awsmodel/botocore
//
// DIR is botocore's data folder (in the moto venv the tests install:
// .cache/venv/lib/python3.*/site-packages/botocore/data). The output is
// committed, so the tests read the same rules on any day; awsmodel's
// TestModelsFresh regenerates it from the venv and compares.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mlstack/mlstack/internal/awsmodel/trim"
)

func main() {
	dir := flag.String("botocore", "", "botocore's data folder")
	out := flag.String("out", "internal/awsmodel/botocore", "where the trimmed models go")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "trimmodels: -botocore DIR is required")
		os.Exit(2)
	}
	if err := trim.WriteAll(*dir, *out); err != nil {
		fmt.Fprintln(os.Stderr, "trimmodels:", err)
		os.Exit(1)
	}
}
