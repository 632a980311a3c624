package proxy

// errorType is the "type" of an OpenAI-shaped error body.
type errorType string

// The error types kvgate answers with.
const (
	errInvalidRequest errorType = "invalid_request_error"
	errNotFound       errorType = "not_found_error"
	errUpstream       errorType = "upstream_error"
	errUnavailable    errorType = "service_unavailable"
	errTimeout        errorType = "timeout_error"
	errForbidden      errorType = "permission_error"
	errInternal       errorType = "internal_error"
	errRateLimit      errorType = "rate_limit_error"
)

// errorCode names one outcome kvgate reports: the "code" of an error body,
// the access log's "error", the kvgate_errors_total label and the span's
// error.type. Every code is declared here, once; retries, metrics and tests
// match these constants, never string literals.
type errorCode string

// The error codes, with the status each answers with.
const (
	codeNoRoute                  errorCode = "no_route"                   // no route matches the request (404)
	codeNoBackend                errorCode = "no_backend"                 // the matched route has no backend with a weight above 0 (500)
	codeUnknownPool              errorCode = "unknown_pool"               // a route names a pool that does not exist (500)
	codeTooManyHeaders           errorCode = "too_many_headers"           // more header fields than limits.maxHeaders (431)
	codeBodyTooLarge             errorCode = "body_too_large"             // a body over limits.maxBodyBytes (413)
	codeBodyReadFailed           errorCode = "body_read_failed"           // the request body could not be read (400)
	codeBadRequest               errorCode = "bad_request"                // HTTP/1.1 the engine could not parse (400)
	codeHeadersTooLarge          errorCode = "headers_too_large"          // a header section over limits.maxHeaderBytes (431)
	codeInvalidRequestTarget     errorCode = "invalid_request_target"     // a request target that is not a path, * or an HTTP/1.1 absolute URI (400)
	codeInvalidPath              errorCode = "invalid_path"               // a path the normaliser refused for another reason (400)
	codePathControlCharacter     errorCode = "path_control_character"     // a control byte in the path (400)
	codePathFragment             errorCode = "path_fragment"              // a fragment (#) in the request target (400)
	codePathBadEscape            errorCode = "path_bad_escape"            // a malformed percent-encoding (400)
	codePathEncodedNul           errorCode = "path_encoded_nul"           // %00 in the path (400)
	codePathEscapedSlash         errorCode = "path_escaped_slash"         // %2F or %5C under paths.escapedSlashes: reject (400)
	codeAuthzDenied              errorCode = "authz_denied"               // an authorization policy denied the caller (403)
	codeNoReadyEndpoint          errorCode = "no_ready_endpoint"          // the pool has no ready endpoint (503)
	codePoolSaturated            errorCode = "pool_saturated"             // every endpoint of an inference pool is saturated and the request is shed (429)
	codeQueueFull                errorCode = "queue_full"                 // the saturated pool's queue is full (429/503)
	codeQueueTimeout             errorCode = "queue_timeout"              // the request waited in the saturated pool's queue past inference.queueTimeout
	codeUpstreamConnectFailed    errorCode = "upstream_connect_failed"    // connecting to the endpoint failed (502; retried with connectFailures)
	codeUpstreamReset            errorCode = "upstream_reset"             // the endpoint closed or reset the connection (502; retried with connectFailures)
	codeUpstreamError            errorCode = "upstream_error"             // another failure of the upstream exchange (502; retried with connectFailures)
	codeUpstreamTimeout          errorCode = "upstream_timeout"           // the endpoint did not answer within timeouts.backendRequest or limits.streamIdleTimeout (504)
	codeUpstreamIdentityMismatch errorCode = "upstream_identity_mismatch" // the endpoint's certificate is not the SPIFFE identity the pool expects (502)
	codeUpstreamIdleTimeout      errorCode = "upstream_idle_timeout"      // the response stream fell silent past the route's timeouts.idle (stream cut)
	codeRequestTimeout           errorCode = "request_timeout"            // the route's timeouts.request ran out (504)
	codeClientClosed             errorCode = "client_closed"              // the client went away (499 in logs and metrics)
	codeStreamAborted            errorCode = "stream_aborted"             // the response stream ended with an error after it started
)
