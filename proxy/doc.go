// Package proxy owns the data plane of kvgate: listeners and protocol engines,
// the engine-neutral Exchange, upstream pools and transports, streaming copy,
// limits, error mapping, drain, and the admin listener.
//
// The engines (HTTP/1.1 on fasthttp, HTTP/2 on golang.org/x/net/http2) only
// translate bytes into an Exchange and a Reply back into bytes. Everything in
// between — routing, picking, forwarding, accounting — is written once in
// handler.go against the Exchange, so the engines cannot drift apart.
//
// An upstream endpoint's state (in-flight counts, ejection, scraped metrics)
// is a pick.Endpoint: the proxy's endpoint adds only its transport, and every
// pool, plain or inference, chooses endpoints through its pick.Pool (the
// balancer for plain pools, retries and mirrors; the inference preset for an
// inference pool's first try). The pick takes the in-flight count;
// Exchange.release gives it back exactly once.
//
// It must not parse configuration files (package config does), decide route
// precedence (package router does), choose endpoints or keep endpoint state
// of its own (package pick does) or hash prompts (package cache does).
package proxy
