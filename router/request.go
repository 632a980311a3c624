package router

// Request is the read-only view of one request that matching needs.
//
// Calls must not allocate and must be cheap: Match may call them many times.
// Model may read a bounded prefix of the body the first time it is called
// (the proxy implements it lazily and caches the answer); Match calls Model
// only after every other condition of a match has passed. A Request is used
// by one goroutine at a time.
type Request interface {
	// Host is the Host header or :authority as sent, without the port.
	// Matching lowercases it and strips a port or a trailing dot if present.
	Host() string
	// Method is the request method, e.g. GET.
	Method() string
	// Path is the request path only, without the query. "" reads as "/".
	Path() string
	// Header returns the first value of a header; name is given lowercase.
	// It returns "" when the header is absent.
	Header(name string) string
	// Query returns the first value of a query parameter and whether it is present.
	Query(name string) (string, bool)
	// Model returns the top-level "model" string of the JSON body, "" when
	// there is no body, no such field, or it lies beyond the bounded prefix.
	Model() string
}
