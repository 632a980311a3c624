package config

import (
	"net"
	"strconv"
	"strings"
)

// KVEventsAddress expands a kvEvents endpoint form (a port or a template
// with {host}) for the endpoint at hostport; "" for "".
func KVEventsAddress(form, hostport string) string {
	if form == "" {
		return ""
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if isPort(form) {
		return "tcp://" + host + ":" + form
	}
	return strings.ReplaceAll(form, "{host}", host)
}

func isPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n > 0 && n < 65536 && strconv.Itoa(n) == s
}
