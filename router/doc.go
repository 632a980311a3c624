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
// Matching follows Gateway API HTTPRoute rules. A route attaches to the
// listeners it names (none: every listener; a listener name the config does
// not declare sees only those). Hostnames match exactly or by "*." wildcard
// (one or more leading labels), case-insensitively, port and trailing dot
// ignored. Conditions inside one match are ANDed, matches are ORed. Across all
// routes on a listener the first of these wins: most specific hostname (exact,
// then longer wildcard, then routes without hostnames), Exact path, longest
// PathPrefix (segment-aware, trailing slash ignored), RegularExpression path
// (RE2, whole path), method present, more header matches, more query matches,
// model match present, definition order. A header that is absent or empty
// never satisfies a header condition.
//
// Choosing an endpoint inside the backend's pool is not this package's
// work: package pick does it, for plain and inference pools alike.
//
// The package must not do I/O, read or parse request bodies, hold global
// locks on the request path, pick endpoints or know about HTTP engines: the proxy hands it a
// Request view (whose Model the proxy reads with package openai) and applies
// the compiled filters through the small interfaces declared here
// (HeaderEditor). A model rewrite filter only chooses the new model name; the
// proxy rewrites the body with openai.RewriteModel.
package router
