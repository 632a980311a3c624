// Package proxy owns the data plane of kvgate: listeners and protocol engines,
// the engine-neutral Exchange, upstream pools and transports, streaming copy,
// limits, error mapping, drain, and the admin listener.
//
// The engines (engine_h1.go: HTTP/1.1 on fasthttp; engine_h2.go: HTTP/2 on
// golang.org/x/net/http2, also the handler HTTP/3 uses; engine_h3.go: the
// QUIC listener on quic-go) only translate bytes into an Exchange and a Reply
// back into bytes. Everything in between — routing, picking, forwarding,
// accounting — is written once in handler.go against the Exchange, so the
// engines cannot drift apart. The upstream transports (transport_h1.go on
// fasthttp's client, transport_h2.go on net/http's) meet the core only
// through roundTripper and upstreamStream (transport.go); error codes are
// one typed set (errcodes.go).
//
// The core (exchange.go, handler.go, headers.go, transport.go, retry.go,
// routing.go) must not import an engine's or a transport's library: what is
// fasthttp-, net/http- or quic-go-specific lives in the engine_* and
// transport_* files.
//
// An upstream endpoint's state (in-flight counts, ejection, scraped metrics)
// is a pick.Endpoint: the proxy's endpoint adds only its transport, and every
// pool, plain or inference, chooses endpoints through its pick.Pool (the
// balancer for plain pools, retries and mirrors; the inference preset for an
// inference pool's first try). The pick takes the in-flight count;
// Exchange.release gives it back exactly once.
//
// The admin listener (admin.go) serves /livez, /readyz, /metrics and
// POST /reload, and mounts the status page (package admin) behind its access
// rule. What the page shows is read on demand from the views of status.go,
// status_view.go, status_config.go and explain.go; the request path only
// adds to counters and copies each inference pick's scores into a bounded
// ring.
//
// It must not parse configuration files (package config does), decide route
// precedence (package router does), choose endpoints or keep endpoint state
// of its own (package pick does) or hash prompts (package cache does).
package proxy
