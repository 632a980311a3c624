// Package admin renders kvgate's status page and its JSON inspection
// endpoints for the admin listener: GET / (an HTML page, server-rendered
// with html/template, its CSS and small script embedded, readable without
// JavaScript and refreshed live with it), /debug/status, /debug/pools,
// /debug/routes, /debug/picks, /debug/config (secrets redacted) and
// POST /debug/explain (a dry-run pick). The proxy mounts the Handler with
// proxy.SetAdminUI, behind its admin access rule.
//
// It reads only the proxy's read-only views (proxy.Proxy.Status, Picks,
// ConfigView, Explain), which are built when a page is asked for. It must
// not keep state of its own, start goroutines, touch the request path, or
// load anything from the network (no CDN: the page works offline).
package admin
