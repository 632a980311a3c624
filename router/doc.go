// Package router owns kvgate's compiled route table: it turns the validated
// routes of a config.Config into an immutable Table that answers, for one
// request on one listener, which route applies (Gateway API HTTPRoute
// matching and precedence), which weighted backend takes it (random or sticky
// rendezvous split), which filters run (header modifiers, URL rewrite,
// redirect, mirror, model rewrite) and how failed tries are retried (policy,
// backoff, retry budget).
//
// A Table is built once per configuration and never changed: a reload builds
// a new one and the proxy swaps a pointer. Everything a Table holds is safe
// for concurrent use by any number of goroutines.
//
// The package must not do I/O, read request bodies, hold global locks on the
// request path or know about HTTP engines: the proxy hands it a Request view
// and applies the compiled filters through the small interfaces declared
// here (HeaderEditor).
package router
