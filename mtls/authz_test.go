package mtls_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/kvgate/kvgate/config"
	"github.com/kvgate/kvgate/mtls"
	"gopkg.in/yaml.v3"
)

func policies(t testing.TB, src string) []config.AuthorizationPolicy {
	t.Helper()
	var ps []config.AuthorizationPolicy
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&ps); err != nil && src != "" {
		t.Fatalf("policy yaml: %v", err)
	}
	return ps
}

// req builds a request; hdr is "name=value,name=value".
func req(principal, ip, method, path string, mods ...func(*mtls.AuthzRequest)) *mtls.AuthzRequest {
	r := &mtls.AuthzRequest{Principal: principal, Method: method, Path: path, Host: "api.example.com", Port: 8443}
	if ip != "" {
		r.SourceIP = netip.MustParseAddr(ip)
	}
	for _, m := range mods {
		m(r)
	}
	return r
}

func withHeaders(kv ...string) func(*mtls.AuthzRequest) {
	return func(r *mtls.AuthzRequest) {
		r.Header = func(name string) (string, bool) {
			for i := 0; i+1 < len(kv); i += 2 {
				if strings.EqualFold(kv[i], name) {
					return kv[i+1], true
				}
			}
			return "", false
		}
	}
}

func withHost(h string) func(*mtls.AuthzRequest) { return func(r *mtls.AuthzRequest) { r.Host = h } }
func withPort(p int) func(*mtls.AuthzRequest)    { return func(r *mtls.AuthzRequest) { r.Port = p } }

const (
	gw     = "spiffe://cluster.local/ns/istio-system/sa/voice-gw"
	voice  = "spiffe://cluster.local/ns/voice/sa/agent"
	batch  = "spiffe://cluster.local/ns/batch/sa/worker"
	anon   = ""
	allowA = "- name: a\n  action: ALLOW\n  rules:\n"
)

func TestAuthorizerCheck(t *testing.T) {
	tests := []struct {
		name    string
		policy  string
		route   string
		pool    string
		r       *mtls.AuthzRequest
		allowed bool
		decider string
		reason  mtls.Reason
	}{
		{"no policies allow", "", "default", "p", req(anon, "", "GET", "/"), true, "", mtls.NoPolicy},
		{"exact principal, spiffe:// stripped", allowA + `  - from: [{principals: ["cluster.local/ns/istio-system/sa/voice-gw"]}]`,
			"default", "p", req(gw, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"other principal denied by default", allowA + `  - from: [{principals: ["cluster.local/ns/istio-system/sa/voice-gw"]}]`,
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"principal written with spiffe:// tolerated", allowA + `  - from: [{principals: ["spiffe://cluster.local/ns/voice/sa/agent"]}]`,
			"default", "p", req(voice, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"principal prefix", allowA + `  - from: [{principals: ["cluster.local/ns/voice/*"]}]`,
			"default", "p", req(voice, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"principal suffix", allowA + `  - from: [{principals: ["*/sa/worker"]}]`,
			"default", "p", req(batch, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"principal * rejects anonymous", allowA + `  - from: [{principals: ["*"]}]`,
			"default", "p", req(anon, "10.0.0.1", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"principal * accepts any authenticated", allowA + `  - from: [{principals: ["*"]}]`,
			"default", "p", req(batch, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"DENY notPrincipals * catches anonymous", "- name: no-anon\n  action: DENY\n  rules:\n  - from: [{notPrincipals: [\"*\"]}]",
			"default", "p", req(anon, "", "GET", "/"), false, "no-anon", mtls.DenyMatched},
		{"DENY notPrincipals * lets authenticated through", "- name: no-anon\n  action: DENY\n  rules:\n  - from: [{notPrincipals: [\"*\"]}]",
			"default", "p", req(voice, "", "GET", "/"), true, "", mtls.NoPolicy},
		{"namespace derived from principal", allowA + `  - from: [{namespaces: ["voice"]}]`,
			"default", "p", req(voice, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"namespace of other principal", allowA + `  - from: [{namespaces: ["voice"]}]`,
			"default", "p", req(batch, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"notNamespaces excludes", allowA + `  - from: [{notNamespaces: ["voice"]}]`,
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"ipBlocks CIDR", allowA + `  - from: [{ipBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(anon, "10.9.8.7", "GET", "/"), true, "a", mtls.AllowMatched},
		{"ipBlocks bare IP", allowA + `  - from: [{ipBlocks: ["192.168.1.5"]}]`,
			"default", "p", req(anon, "192.168.1.5", "GET", "/"), true, "a", mtls.AllowMatched},
		{"ipBlocks IPv4-mapped source", allowA + `  - from: [{ipBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(anon, "::ffff:10.1.1.1", "GET", "/"), true, "a", mtls.AllowMatched},
		{"ipBlocks IPv6 CIDR", allowA + `  - from: [{ipBlocks: ["fd00::/8"]}]`,
			"default", "p", req(anon, "fd12::1", "GET", "/"), true, "a", mtls.AllowMatched},
		{"ipBlocks miss", allowA + `  - from: [{ipBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(anon, "11.0.0.1", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"notIpBlocks", allowA + `  - from: [{notIpBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(anon, "10.0.0.1", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"from entries ORed", allowA + `  - from: [{principals: ["cluster.local/ns/x/sa/y"]}, {ipBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(anon, "10.0.0.1", "GET", "/"), true, "a", mtls.AllowMatched},
		{"fields in one from entry ANDed", allowA + `  - from: [{principals: ["*"], ipBlocks: ["10.0.0.0/8"]}]`,
			"default", "p", req(voice, "11.0.0.1", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"methods and paths ANDed, match", allowA + `  - to: [{methods: [POST], paths: ["/v1/*"]}]`,
			"default", "p", req(anon, "", "POST", "/v1/chat/completions"), true, "a", mtls.AllowMatched},
		{"methods and paths ANDed, wrong method", allowA + `  - to: [{methods: [POST], paths: ["/v1/*"]}]`,
			"default", "p", req(anon, "", "GET", "/v1/chat/completions"), false, "", mtls.NoAllowMatched},
		{"exact path does not prefix-match", allowA + `  - to: [{paths: ["/v1"]}]`,
			"default", "p", req(anon, "", "GET", "/v1/models"), false, "", mtls.NoAllowMatched},
		{"path suffix", allowA + `  - to: [{paths: ["*.json"]}]`,
			"default", "p", req(anon, "", "GET", "/a/b.json"), true, "a", mtls.AllowMatched},
		{"notPaths", "- name: d\n  action: DENY\n  rules:\n  - to: [{notPaths: [\"/v1/*\"]}]",
			"default", "p", req(anon, "", "GET", "/admin"), false, "d", mtls.DenyMatched},
		{"to entries ORed", allowA + `  - to: [{methods: [DELETE]}, {paths: ["/healthz"]}]`,
			"default", "p", req(anon, "", "GET", "/healthz"), true, "a", mtls.AllowMatched},
		{"hosts case-insensitive with port", allowA + `  - to: [{hosts: ["API.example.com"]}]`,
			"default", "p", req(anon, "", "GET", "/", withHost("api.EXAMPLE.com:8443")), true, "a", mtls.AllowMatched},
		{"hosts suffix", allowA + `  - to: [{hosts: ["*.internal"]}]`,
			"default", "p", req(anon, "", "GET", "/", withHost("vllm.internal")), true, "a", mtls.AllowMatched},
		{"notHosts", allowA + `  - to: [{notHosts: ["api.example.com"]}]`,
			"default", "p", req(anon, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"ports", allowA + `  - to: [{ports: ["8443"]}]`,
			"default", "p", req(anon, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"notPorts", allowA + `  - to: [{notPorts: ["8443"]}]`,
			"default", "p", req(anon, "", "GET", "/", withPort(8443)), false, "", mtls.NoAllowMatched},
		{"from and to both required", allowA + `  - from: [{namespaces: [voice]}]` + "\n" + `    to: [{methods: [POST]}]`,
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"rules ORed", allowA + "  - from: [{namespaces: [x]}]\n  - to: [{methods: [GET]}]",
			"default", "p", req(voice, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"ALLOW without rules matches nothing", "- name: a\n  action: ALLOW",
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"DENY without rules denies nothing", "- name: d\n  action: DENY",
			"default", "p", req(voice, "", "GET", "/"), true, "", mtls.NoPolicy},
		{"empty rule matches everything", allowA + "  - {}",
			"default", "p", req(anon, "", "DELETE", "/x"), true, "a", mtls.AllowMatched},
		{"DENY wins over a matching ALLOW", allowA + "  - {}\n- name: d\n  action: DENY\n  rules:\n  - from: [{namespaces: [voice]}]",
			"default", "p", req(voice, "", "GET", "/"), false, "d", mtls.DenyMatched},
		{"non-matching DENY then ALLOW", allowA + "  - {}\n- name: d\n  action: DENY\n  rules:\n  - from: [{namespaces: [batch]}]",
			"default", "p", req(voice, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"second ALLOW policy decides", allowA + "  - to: [{methods: [PUT]}]\n- name: b\n  rules:\n  - to: [{methods: [GET]}]",
			"default", "p", req(voice, "", "GET", "/"), true, "b", mtls.AllowMatched},
		{"policy scoped to other route does not apply", "- name: a\n  routes: [canary]\n  rules:\n  - to: [{methods: [PUT]}]",
			"default", "p", req(voice, "", "GET", "/"), true, "", mtls.NoPolicy},
		{"policy scoped to this route applies", "- name: a\n  routes: [canary, default]\n  rules:\n  - to: [{methods: [PUT]}]",
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"policy scoped to other pool does not apply", "- name: d\n  action: DENY\n  pools: [v2]\n  rules:\n  - {}",
			"default", "v1", req(voice, "", "GET", "/"), true, "", mtls.NoPolicy},
		{"policy scoped to this pool applies", "- name: d\n  action: DENY\n  pools: [v2]\n  rules:\n  - {}",
			"default", "v2", req(voice, "", "GET", "/"), false, "d", mtls.DenyMatched},
		{"when header value", allowA + "  - when: [{key: \"request.headers[x-tier]\", values: [gold, silver]}]",
			"default", "p", req(anon, "", "GET", "/", withHeaders("X-Tier", "silver")), true, "a", mtls.AllowMatched},
		{"when header missing fails values", allowA + "  - when: [{key: \"request.headers[x-tier]\", values: [\"*\"]}]",
			"default", "p", req(anon, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"when header missing satisfies notValues", allowA + "  - when: [{key: \"request.headers[x-debug]\", notValues: [\"*\"]}]",
			"default", "p", req(anon, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"when header notValues excludes", allowA + "  - when: [{key: \"request.headers[x-debug]\", notValues: [\"1\"]}]",
			"default", "p", req(anon, "", "GET", "/", withHeaders("x-debug", "1")), false, "", mtls.NoAllowMatched},
		{"when source.ip", allowA + "  - when: [{key: source.ip, values: [\"127.0.0.0/8\"]}]",
			"default", "p", req(anon, "127.0.0.1", "GET", "/"), true, "a", mtls.AllowMatched},
		{"when source.principal", allowA + "  - when: [{key: source.principal, values: [\"cluster.local/ns/batch/*\"]}]",
			"default", "p", req(batch, "", "GET", "/"), true, "a", mtls.AllowMatched},
		{"when source.namespace notValues", allowA + "  - when: [{key: source.namespace, notValues: [batch]}]",
			"default", "p", req(batch, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"when destination.port", allowA + "  - when: [{key: destination.port, values: [\"9000\"]}]",
			"default", "p", req(anon, "", "GET", "/", withPort(9000)), true, "a", mtls.AllowMatched},
		{"when conditions ANDed", allowA + "  - when: [{key: destination.port, values: [\"8443\"]}, {key: source.namespace, values: [voice]}]",
			"default", "p", req(batch, "", "GET", "/"), false, "", mtls.NoAllowMatched},
		{"action defaults to ALLOW", "- name: a\n  rules:\n  - to: [{methods: [PUT]}]",
			"default", "p", req(voice, "", "GET", "/"), false, "", mtls.NoAllowMatched},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := mtls.CompileAuthz(policies(t, tc.policy))
			if err != nil {
				t.Fatal(err)
			}
			d := a.Check(tc.route, tc.pool, tc.r)
			if d.Allowed != tc.allowed || d.Policy != tc.decider || d.Reason != tc.reason {
				t.Fatalf("got %+v (%s), want allowed=%v policy=%q reason=%s", d, d.Reason, tc.allowed, tc.decider, tc.reason)
			}
		})
	}
}

func TestNilAuthorizerAllows(t *testing.T) {
	var a *mtls.Authorizer
	if d := a.Check("r", "p", &mtls.AuthzRequest{}); !d.Allowed {
		t.Fatal("nil authorizer denied")
	}
}

func TestCompileAuthzErrors(t *testing.T) {
	tests := []struct {
		policy string
		want   []string
	}{
		{"- {name: a, rules: [{}]}\n- name: b\n  rules:\n  - from: [{ipBlocks: [10.0.0.0/8, 10.1.2.3, 10.0.0/8]}]",
			[]string{`authorization[1].rules[0].from[0].ipBlocks[2]: "10.0.0/8" is not a CIDR; write it like 10.0.0.0/8`}},
		{"- rules: [{from: [{ipBlocks: [not-an-ip]}]}]",
			[]string{`authorization[0].rules[0].from[0].ipBlocks[0]: "not-an-ip" is not an IP address or CIDR`}},
		{"- rules: [{from: [{notIpBlocks: [10.0.0.0/99]}]}]",
			[]string{`authorization[0].rules[0].from[0].notIpBlocks[0]: "10.0.0.0/99" is not a CIDR`}},
		{"- {action: AUDIT}", []string{"authorization[0].action: AUDIT is not supported"}},
		{"- {action: allow}", []string{`authorization[0].action: "allow" is not an action; write ALLOW or DENY`}},
		{"- rules: [{to: [{ports: [http]}]}]", []string{`authorization[0].rules[0].to[0].ports[0]: "http" is not a port number`}},
		{"- rules: [{to: [{notPorts: [\"70000\"]}]}]", []string{`authorization[0].rules[0].to[0].notPorts[0]: "70000" is not a port number`}},
		{"- rules: [{to: [{paths: [v1/*]}]}]", []string{`authorization[0].rules[0].to[0].paths[0]: "v1/*" does not start with /`}},
		{"- rules: [{to: [{paths: [\"/v1/*/x\"]}]}]", []string{`authorization[0].rules[0].to[0].paths[0]: "/v1/*/x" has a * that is not alone`}},
		{"- rules: [{from: [{principals: [\"\"]}]}]", []string{`authorization[0].rules[0].from[0].principals[0]: "" is empty`}},
		{"- rules: [{from: [{}]}]", []string{"authorization[0].rules[0].from[0]: is empty"}},
		{"- rules: [{to: [{}]}]", []string{"authorization[0].rules[0].to[0]: is empty"}},
		{"- rules: [{when: [{key: request.auth.principal, values: [x]}]}]",
			[]string{`authorization[0].rules[0].when[0].key: "request.auth.principal" is not supported: kvgate does not validate request JWTs`}},
		{"- rules: [{when: [{key: connection.sni, values: [x]}]}]",
			[]string{`authorization[0].rules[0].when[0].key: "connection.sni" is not supported; supported keys: request.headers[NAME]`}},
		{"- rules: [{when: [{key: \"request.headers[]\", values: [x]}]}]", []string{`when[0].key: "request.headers[]" names no header`}},
		{"- rules: [{when: [{key: source.ip}]}]", []string{"authorization[0].rules[0].when[0]: has neither values nor notValues"}},
		{"- rules: [{when: [{key: source.ip, values: [bad]}]}]", []string{`authorization[0].rules[0].when[0].values[0]: "bad" is not an IP`}},
		{"- rules: [{when: [{key: destination.port, notValues: [x]}]}]", []string{`authorization[0].rules[0].when[0].notValues[0]: "x" is not a port number`}},
		// Every error is reported, not only the first.
		{"- {action: NOPE, rules: [{to: [{ports: [x]}]}]}\n- rules: [{from: [{ipBlocks: [y]}]}]",
			[]string{"authorization[0].action", "authorization[0].rules[0].to[0].ports[0]", "authorization[1].rules[0].from[0].ipBlocks[0]"}},
	}
	for _, tc := range tests {
		_, err := mtls.CompileAuthz(policies(t, tc.policy))
		if err == nil {
			t.Errorf("%s: compiled", tc.policy)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s:\n error %q\n lacks %q", tc.policy, err, w)
			}
		}
	}
}

func BenchmarkCheck(b *testing.B) {
	a, err := mtls.CompileAuthz(policies(b, `
- name: no-anon
  action: DENY
  rules:
  - from: [{notPrincipals: ["*"]}]
- name: block-admin
  action: DENY
  rules:
  - to: [{paths: ["/admin/*"]}]
- name: only-gateway
  action: ALLOW
  routes: [default, qa-canary]
  rules:
  - from: [{principals: ["cluster.local/ns/istio-system/sa/voice-gw"]}, {namespaces: [batch]}]
    to: [{methods: [POST], paths: ["/v1/*"]}]
    when: [{key: "request.headers[x-tier]", values: [gold, silver]}]
`))
	if err != nil {
		b.Fatal(err)
	}
	r := req(batch, "10.0.0.1", "POST", "/v1/chat/completions", withHeaders("x-tier", "gold"))
	b.ReportAllocs()
	for b.Loop() {
		if d := a.Check("default", "agent-v1", r); !d.Allowed {
			b.Fatal("denied")
		}
	}
}
