// Package proxy owns the data plane of kvgate: listeners and protocol engines,
// the engine-neutral Exchange, upstream pools and transports, streaming copy,
// limits, error mapping, drain, and the admin listener.
//
// The engines (HTTP/1.1 on fasthttp, HTTP/2 on golang.org/x/net/http2) only
// translate bytes into an Exchange and a Reply back into bytes. Everything in
// between — routing, picking, forwarding, accounting — is written once in
// handler.go against the Exchange, so the engines cannot drift apart.
//
// It must not parse configuration files (package config does), decide route
// precedence (package router does) or hash prompts (package cache does).
package proxy
