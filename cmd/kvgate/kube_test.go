//go:build !nokube

package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Before the first configuration the admin address answers: alive, not
// ready, and why.
func TestWaitingAdmin(t *testing.T) {
	w, err := startWaitingAdmin("127.0.0.1:0", func() error { return errors.New("no Gateway of GatewayClass kvgate yet") })
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + w.ln.Addr().String()
	for path, want := range map[string]int{"/livez": 200, "/readyz": 503} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/readyz" && !strings.Contains(string(body), "no Gateway of GatewayClass kvgate yet") {
			t.Errorf("/readyz does not say why: %q", body)
		}
	}
	w.close()
	if _, err := http.Get(base + "/livez"); err == nil {
		t.Errorf("the address is still served after close")
	}
}

// Without a reachable cluster, run --kubernetes says which configuration it tried.
func TestRunKubernetesNeedsACluster(t *testing.T) {
	t.Setenv("KUBECONFIG", "")
	r := invoke(t, "run", "--kubernetes", "--kubeconfig", t.TempDir()+"/missing.yaml", "--admin", "127.0.0.1:0")
	if r.code == 0 || !strings.Contains(r.message(), "--kubeconfig") {
		t.Errorf("exit %d, message %q; want an error naming --kubeconfig", r.code, r.message())
	}
}
