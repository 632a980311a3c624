package config

import "testing"

func TestEditDistance(t *testing.T) {
	cases := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"abc", "", 3},
		{"address", "address", 0}, {"adress", "address", 1}, {"CertFile", "certFile", 0},
		{"plian", "plain", 1}, {"kitten", "sitting", 3}, {"protocol", "protocols", 1},
		{"ca", "abc", 3}, {"héllo", "hello", 1},
	}
	for _, c := range cases {
		if got := editDistance(c.a, c.b); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := editDistance(c.b, c.a); got != c.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d (not symmetric)", c.b, c.a, got, c.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"name", "endpoints", "dns", "protocol", "balancer", "tls", "inference"}
	cases := []struct{ got, want string }{
		{"endpoint", "endpoints"}, {"Name", "name"}, {"balancr", "balancer"}, {"inferense", "inference"},
		{"tsl", "tls"}, {"colour", ""}, {"x", ""}, {"infer", "inference"}, {"n", ""},
		{"dnss", "dns"}, {"weight", ""},
	}
	for _, c := range cases {
		if s := suggest(c.got, keys); s != c.want {
			t.Errorf("suggest(%q) = %q, want %q", c.got, s, c.want)
		}
	}
	if s := suggest("round", []string{"round-robin", "round-trip"}); s != "" {
		t.Errorf("an ambiguous prefix suggested %q", s)
	}
}
