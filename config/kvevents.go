package config

import (
	"net"
	"strconv"
	"strings"
)

// KVEventsAddress expands a kvEvents endpoint form (a port, an offset
// "+N" from the endpoint's own port, or a template with {host}) for the
// endpoint at hostport; "" for "".
func KVEventsAddress(form, hostport string) string {
	if form == "" {
		return ""
	}
	host, port := hostport, ""
	if h, p, err := net.SplitHostPort(hostport); err == nil {
		host, port = h, p
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if isPort(form) {
		return "tcp://" + host + ":" + form
	}
	if off, ok := portOffset(form); ok {
		p, _ := strconv.Atoi(port)
		return "tcp://" + host + ":" + strconv.Itoa(p+off)
	}
	return strings.ReplaceAll(form, "{host}", host)
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == s
}

// portOffset reads the "+N" form.
func portOffset(s string) (int, bool) {
	if !strings.HasPrefix(s, "+") || !isPort(s[1:]) {
		return 0, false
	}
	n, _ := strconv.Atoi(s[1:])
	return n, true
}
