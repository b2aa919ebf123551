// Command genofferings writes internal/awsmodel/offerings.txt.gz, the
// instance types each region offers, from moto's per-region offering data
// (which moto generates from real AWS's DescribeInstanceTypeOfferings):
//
//	go run ./internal/awsmodel/genofferings -moto $MLSTACK_VENV/lib/python3.11/site-packages/moto
//
// One line per region: its name, then its types, sorted. A region of
// mlstack's region table that moto has no data for is a line with its name
// alone: the model then takes every type as offered there.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mlstack/mlstack/provision/region"
)

func main() {
	moto := flag.String("moto", "", "moto's package directory (…/site-packages/moto)")
	out := flag.String("o", "internal/awsmodel/offerings.txt.gz", "the file to write")
	flag.Parse()
	if *moto == "" {
		log.Fatal("genofferings: pass -moto DIR")
	}
	lines, err := regionLines(filepath.Join(*moto, "ec2/resources/instance_type_offerings/region"))
	if err != nil {
		log.Fatal(err)
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write([]byte(strings.Join(lines, "\n") + "\n"))
	if err := zw.Close(); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
}

// regionLines reads every region file of moto's, and adds the regions of
// mlstack's table it lacks.
func regionLines(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json.gz"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("genofferings: no region files in %s (%v)", dir, err)
	}
	seen := map[string]bool{}
	var lines []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json.gz")
		types, err := readTypes(f)
		if err != nil {
			return nil, err
		}
		seen[name] = true
		lines = append(lines, name+" "+strings.Join(types, " "))
	}
	for _, r := range region.Names() {
		if !seen[r] {
			lines = append(lines, r)
		}
	}
	slices.Sort(lines)
	return lines, nil
}

// readTypes is the sorted set of types one of moto's region files lists.
func readTypes(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var offers []struct{ InstanceType string }
	if err := json.NewDecoder(zr).Decode(&offers); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	set := map[string]bool{}
	for _, o := range offers {
		set[o.InstanceType] = true
	}
	var types []string
	for t := range set {
		types = append(types, t)
	}
	slices.Sort(types)
	return types, nil
}
