// Package admintest starts a small kvgate in process in front of simulated
// model servers (package sim), with two inference pools, a plain pool with
// one dead endpoint and an authorization policy, and drives traffic through
// it: the fixture of the status page's browser test, of the inspect tests
// and of the README's screenshot (make status-screenshot). It also runs
// headless Chromium (DumpDOM, Screenshot).
//
// It listens on loopback only and must not be imported by non-test code of
// kvgate other than the screenshot program.
package admintest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/kvgate/kvgate/admin"
	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/proxy"
	"github.com/kvgate/kvgate/sim"
)

// Stack is a running kvgate with simulators.
type Stack struct {
	Proxy *proxy.Proxy
	// Admin is the admin listener's base URL, e.g. http://127.0.0.1:41000.
	Admin string
	// URL is the client listener's base URL.
	URL string
	// ConfigFile is the configuration file kvgate reloads from.
	ConfigFile string
	// Dead is the address of the plain pool's endpoint that refuses connections.
	Dead string

	sims   []*sim.Running
	client *http.Client
	vars   configVars
}

type configVars struct {
	Chat, Canary, Tools []string
	Dead                string
	CanaryWeight        int
}

// The configuration: requests with x-pool: tools go to the plain pool
// "tools"; every other request under /v1/ is split 90/10 between the
// inference pools "chat" and "chat-canary". Requests with x-tenant: blocked
// are denied by the policy "block-tenant".
const configText = `admin:
  address: 127.0.0.1:0
accessLog: {path: "off"}
listeners:
  - {name: public, address: 127.0.0.1:0, protocols: [http1, http2]}
routes:
  - name: tools
    matches: [{path: {value: /v1/}, headers: [{name: x-pool, value: tools}]}]
    backends: [{pool: tools}]
  - name: chat
    matches: [{path: {value: /v1/}}]
    backends:
      - {pool: chat, weight: {{sub100 .CanaryWeight}}}
      - {pool: chat-canary, weight: {{.CanaryWeight}}}
pools:
  - name: chat
    endpoints: [{{range $i, $e := .Chat}}{{if $i}}, {{end}}{{$e}}{{end}}]
    inference: {modelServer: vllm, picker: prefix-affinity}
  - name: chat-canary
    endpoints: [{{range $i, $e := .Canary}}{{if $i}}, {{end}}{{$e}}{{end}}]
    inference: {modelServer: vllm, picker: prefix-affinity}
  - name: tools
    endpoints: [{{range .Tools}}{{.}}, {{end}}{{.Dead}}]
    balancer: round-robin
authorization:
  - name: block-tenant
    action: DENY
    rules:
      - when: [{key: "request.headers[x-tenant]", values: [blocked]}]
`

var configTmpl = template.Must(template.New("cfg").Funcs(template.FuncMap{
	"sub100": func(n int) int { return 100 - n },
}).Parse(configText))

// Start starts 3 + 1 + 1 simulators and kvgate with the status page
// mounted, writing its configuration under dir. Close stops everything.
func Start(ctx context.Context, dir string) (*Stack, error) {
	s := &Stack{client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	scfg := sim.DefaultConfig()
	scfg.DecodePerToken = 2 * time.Millisecond
	for range 5 {
		r, err := sim.Start(ctx, "127.0.0.1:0", scfg)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.sims = append(s.sims, r)
	}
	s.Dead = "127.0.0.1:1" // nothing listens on port 1: connections are refused
	s.vars = configVars{
		Chat: []string{s.sims[0].Addr, s.sims[1].Addr, s.sims[2].Addr}, Canary: []string{s.sims[3].Addr},
		Tools: []string{s.sims[4].Addr}, Dead: s.Dead, CanaryWeight: 10,
	}
	s.ConfigFile = filepath.Join(dir, "kvgate.yaml")
	if err := s.writeConfig(); err != nil {
		s.Close()
		return nil, err
	}
	cfg, err := config.Load(s.ConfigFile)
	if err != nil {
		s.Close()
		return nil, err
	}
	p, err := proxy.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		s.Close()
		return nil, err
	}
	p.SetAdminUI(admin.Handler(p, "dev"))
	if err := p.Start(); err != nil {
		s.Close()
		return nil, err
	}
	s.Proxy = p
	s.Admin = "http://" + p.AdminAddr().String()
	s.URL = "http://" + p.Listener("public").Addr().String()
	return s, nil
}

func (s *Stack) writeConfig() error {
	var b strings.Builder
	if err := configTmpl.Execute(&b, s.vars); err != nil {
		return err
	}
	return os.WriteFile(s.ConfigFile, []byte(b.String()), 0o600)
}

// Close stops kvgate and the simulators.
func (s *Stack) Close() {
	if s.Proxy != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.Proxy.Shutdown(ctx)
		cancel()
	}
	for _, r := range s.sims {
		_ = r.Close()
	}
	s.client.CloseIdleConnections()
}

// SystemPrompt is shared by every conversation, as in a real deployment.
var SystemPrompt = strings.Repeat("You are a helpful assistant for the kvgate operators' handbook. Answer briefly. ", 12)

// Chat sends turn of conversation conv (its earlier turns are the prompt's
// prefix) and reads the streamed answer. header adds request headers.
func (s *Stack) Chat(conv, turn int, header ...string) error {
	msgs := []map[string]string{{"role": "system", "content": SystemPrompt}}
	for t := 0; t <= turn; t++ {
		msgs = append(msgs, map[string]string{"role": "user", "content": fmt.Sprintf("Conversation %d, question %d: %s", conv, t, strings.Repeat("how do I read the status page? ", 8))})
		if t < turn {
			msgs = append(msgs, map[string]string{"role": "assistant", "content": strings.Repeat("It shows pools and endpoints. ", 6)})
		}
	}
	body, _ := json.Marshal(map[string]any{"model": "sim-model", "messages": msgs, "max_tokens": 8, "stream": true,
		"stream_options": map[string]any{"include_usage": true}})
	return s.post(string(body), header...)
}

// Tool sends one request to the plain pool "tools".
func (s *Stack) Tool() error {
	return s.post(`{"model":"sim-model","prompt":"ping","max_tokens":1}`, "x-pool", "tools")
}

func (s *Stack) post(body string, header ...string) error {
	req, err := http.NewRequest("POST", s.URL+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return &StatusError{Code: resp.StatusCode}
	}
	return err
}

// StatusError is a reply other than 200.
type StatusError struct{ Code int }

func (e *StatusError) Error() string { return fmt.Sprintf("admintest: status %d", e.Code) }

// Traffic sends conversations turns of conversations each, tools requests
// to the plain pool (some fail on its dead endpoint until it is ejected)
// and one denied request. Only transport errors are returned.
func (s *Stack) Traffic(conversations, turns, tools int) error {
	for t := range turns {
		for c := range conversations {
			if err := s.Chat(c, t); err != nil && !isStatus(err) {
				return err
			}
		}
	}
	for range tools {
		if err := s.Tool(); err != nil && !isStatus(err) {
			return err
		}
	}
	if err := s.Chat(0, 0, "x-tenant", "blocked"); err != nil && !isStatus(err) {
		return err
	}
	return nil
}

func isStatus(err error) bool {
	var se *StatusError
	return errors.As(err, &se)
}

// Reload rewrites the configuration with the canary at weight (of 100)
// and reloads it; broken writes a file kvgate refuses instead.
func (s *Stack) Reload(weight int, broken bool) error {
	s.vars.CanaryWeight = weight
	if err := s.writeConfig(); err != nil {
		return err
	}
	if broken {
		f, err := os.OpenFile(s.ConfigFile, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		_, _ = f.WriteString("bogusKey: 1\n")
		_ = f.Close()
	}
	return s.Proxy.ReloadSource()
}
