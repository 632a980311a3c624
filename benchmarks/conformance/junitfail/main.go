// Command junitfail prints the ids of the failed cases in an h2spec JUnit
// report, one per line: the suite's package and the case's 1-based position
// in it, as h2spec numbers them (http2/6.5.3/1). Skipped cases are not
// failures. It is a conformance-script helper and must not be imported.
package main

import (
	"encoding/xml"
	"fmt"
	"io"
	"os"
)

type report struct {
	Suites []struct {
		Package string `xml:"package,attr"`
		Cases   []struct {
			Failure *struct{} `xml:"failure"`
			Error   *struct{} `xml:"error"`
		} `xml:"testcase"`
	} `xml:"testsuite"`
}

// failed returns the failed case ids of the report read from r.
func failed(r io.Reader) ([]string, error) {
	var rep report
	if err := xml.NewDecoder(r).Decode(&rep); err != nil {
		return nil, fmt.Errorf("junitfail: not a JUnit report: %w", err)
	}
	var out []string
	for _, s := range rep.Suites {
		for i, c := range s.Cases {
			if c.Failure != nil || c.Error != nil {
				out = append(out, fmt.Sprintf("%s/%d", s.Package, i+1))
			}
		}
	}
	return out, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: junitfail REPORT.xml")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "junitfail:", err)
		os.Exit(1)
	}
	defer f.Close()
	ids, err := failed(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, id := range ids {
		fmt.Println(id)
	}
}
