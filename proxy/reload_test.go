package proxy

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvgate/kvgate/config"
)

// startFromFile runs kvgate from a config file, as `kvgate run --config` does.
func startFromFile(t *testing.T, path string) *Proxy {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return startConfig(t, cfg, nil)
}

func reloadConfig(a, b string, weightA, weightB int, tag string) string {
	return fmt.Sprintf(`admin: {address: "127.0.0.1:0"}
accessLog: {path: "off"}
listeners:
  - {name: plain, address: "127.0.0.1:0"}
routes:
  - name: r
    filters: [{responseHeaderModifier: {set: [{name: x-config, value: %s}]}}]
    backends: [{pool: a, weight: %d}, {pool: b, weight: %d}]
pools:
  - {name: a, endpoints: [%q]}
  - {name: b, endpoints: [%q]}
`, tag, weightA, weightB, a, b)
}

func postReload(t *testing.T, p *Proxy) (int, string) {
	t.Helper()
	resp, err := http.Post("http://"+p.AdminAddr().String()+"/reload", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestReloadUnderLoad(t *testing.T) {
	a, b := backend(t, &named{name: "a"}), backend(t, &named{name: "b"})
	path := filepath.Join(t.TempDir(), "kvgate.yaml")
	configs := []string{reloadConfig(a, b, 1, 0, "one"), reloadConfig(a, b, 0, 1, "two")}
	if err := os.WriteFile(path, []byte(configs[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startFromFile(t, path)
	url := "http://" + p.Listener("plain").Addr().String() + "/"
	var stop atomic.Bool
	var ok, failed atomic.Int64
	var seen sync.Map
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := plainClient()
			for i := 0; i < 100000 && !stop.Load(); i++ {
				resp, err := c.Get(url)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
					continue
				}
				seen.Store(resp.Header.Get("X-Config")+"/"+resp.Header.Get("X-Backend"), true)
				ok.Add(1)
			}
		})
	}
	for i := range 50 {
		if err := os.WriteFile(path, []byte(configs[(i+1)%2]), 0o600); err != nil {
			t.Fatal(err)
		}
		if code, body := postReload(t, p); code != 200 {
			t.Fatalf("reload %d: %d %s", i, code, body)
		}
		// Let some traffic see this config before the next swap.
		for n := ok.Load(); ok.Load() < n+5 && failed.Load() == 0; {
			time.Sleep(time.Millisecond)
		}
	}
	stop.Store(true)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during reloads", failed.Load(), failed.Load()+ok.Load())
	}
	for _, k := range []string{"one/a", "two/b"} {
		if _, ok := seen.Load(k); !ok {
			t.Errorf("never saw %s", k)
		}
	}
	seen.Range(func(k, _ any) bool {
		if k != "one/a" && k != "two/b" {
			t.Errorf("a response mixed two configs: %v", k)
		}
		return true
	})
	if m := metricsText(t, p); !strings.Contains(m, `kvgate_config_reloads_total{result="ok"} 51`) {
		t.Errorf("reloads not counted:\n%s", m)
	}
}

func TestReloadInvalidKeepsRunningConfig(t *testing.T) {
	a := backend(t, &named{name: "a"})
	path := filepath.Join(t.TempDir(), "kvgate.yaml")
	good := reloadConfig(a, a, 1, 1, "good")
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startFromFile(t, path)
	bad := strings.Replace(good, "pool: b, weight", "pool: missing, weight", 1)
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	code, body := postReload(t, p)
	if code/100 == 2 || !strings.Contains(body, "missing") {
		t.Fatalf("invalid reload answered %d %q; want an error naming the unknown pool", code, body)
	}
	resp, _ := mustGet(t, plainClient(), "http://"+p.Listener("plain").Addr().String()+"/")
	if resp.StatusCode != 200 || resp.Header.Get("X-Config") != "good" {
		t.Fatalf("after a refused reload: status %d config %q", resp.StatusCode, resp.Header.Get("X-Config"))
	}
	if m := metricsText(t, p); !strings.Contains(m, `kvgate_config_reloads_total{result="error"} 1`) {
		t.Errorf("refused reload not counted:\n%s", m)
	}
}
