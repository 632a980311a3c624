// Command testsslfind prints the findings of a testssl.sh JSON file
// (--jsonfile) at severity MEDIUM or worse, one per line as
// "SEVERITY id: finding" (FATAL included: a scan that gave up is a failure),
// leaving out those a self-signed, short-lived test certificate causes (ids
// starting with cert_, and OCSP / CAA / HSTS checks that need a public name)
// and security_headers (the backend's response headers, not TLS). Exit status 1 when it printed anything. It is a
// conformance-script helper and must not be imported.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

type finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

var serious = map[string]bool{"MEDIUM": true, "HIGH": true, "CRITICAL": true, "FATAL": true}

// testCertOnly names the checks a self-signed loopback certificate fails by design.
func testCertOnly(id string) bool {
	for _, p := range []string{"cert_", "OCSP", "DNS_CAArecord", "HSTS", "security_headers"} {
		if strings.HasPrefix(id, p) {
			return true
		}
	}
	return false
}

func findings(r io.Reader) ([]string, error) {
	var all []finding
	if err := json.NewDecoder(r).Decode(&all); err != nil {
		return nil, fmt.Errorf("testsslfind: not a testssl.sh JSON file: %w", err)
	}
	var out []string
	for _, f := range all {
		if serious[f.Severity] && !testCertOnly(f.ID) {
			out = append(out, f.Severity+" "+f.ID+": "+f.Finding)
		}
	}
	return out, nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: testsslfind TESTSSL.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "testsslfind:", err)
		os.Exit(2)
	}
	defer f.Close()
	out, err := findings(f)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	for _, l := range out {
		fmt.Println(l)
	}
	if len(out) > 0 {
		os.Exit(1)
	}
}
