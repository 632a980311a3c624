// Package mtls owns kvgate's transport identity and the authorization of callers: identity
// sources (the SPIFFE Workload API, SVID files written by spire-agent or spiffe-helper, plain
// certificate files), the builders of downstream (server) and upstream (client) tls.Configs,
// peer identity extraction, and the compiled AuthorizationPolicy engine.
//
// It must not do network I/O on the request path: identity sources are fed by background
// watchers and read through atomics or short read locks, and Authorizer.Check only reads an
// immutable compiled policy set. It knows nothing of HTTP engines, routes or pools beyond the
// names handed to Check.
package mtls
