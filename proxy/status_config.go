package proxy

import (
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/kvgate/kvgate/config"
)

// redacted replaces a secret in /debug/config.
const redacted = "<redacted>"

// ConfigView returns the running configuration as a generic tree (maps,
// lists, scalars, keyed by the YAML names) with secrets replaced by
// "<redacted>": values of headers that carry credentials (Authorization,
// Cookie, API keys, anything named like a token, secret or password) in
// header matches, header modifiers and authorization conditions, keys named
// like a token, secret or password, and the password of any URL.
func (p *Proxy) ConfigView() (any, error) {
	return RedactConfig(p.snap.Load().cfg)
}

// RedactConfig is ConfigView for any configuration.
func RedactConfig(cfg *config.Config) (any, error) {
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := yaml.Unmarshal(b, &tree); err != nil {
		return nil, err
	}
	return redactTree(tree), nil
}

func redactTree(v any) any {
	switch t := v.(type) {
	case map[string]any:
		// A {name, value} pair is a header (match or modifier).
		if name, ok := t["name"].(string); ok {
			if val, ok := t["value"].(string); ok {
				t["value"] = redactHeaderValue(name, val)
			}
		}
		// An authorization condition: {key: request.headers[NAME], values: [...]}.
		if key, ok := t["key"].(string); ok && strings.HasPrefix(key, "request.headers[") && secretName(key) {
			for _, k := range []string{"values", "notValues"} {
				if list, ok := t[k].([]any); ok {
					for i := range list {
						list[i] = redacted
					}
				}
			}
		}
		for k, val := range t {
			if s, ok := val.(string); ok {
				switch {
				case secretName(k) && !strings.HasSuffix(strings.ToLower(k), "file") && k != "key" && k != "name":
					t[k] = redacted
				case strings.Contains(s, "://"):
					t[k] = redactURL(s)
				}
				continue
			}
			t[k] = redactTree(val)
		}
		return t
	case []any:
		for i := range t {
			t[i] = redactTree(t[i])
		}
		return t
	}
	return v
}

// secretName reports whether a header or key name suggests a credential.
func secretName(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"authorization", "cookie", "token", "secret", "password", "passwd", "api-key", "apikey", "api_key", "x-api-key", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// redactHeaderValue hides the value of a header that carries credentials.
func redactHeaderValue(name, value string) string {
	if secretName(name) {
		return redacted
	}
	return value
}

// redactURL hides a URL's password.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
		return strings.Replace(u.String(), "xxxxx", redacted, 1)
	}
	return s
}
