package admin

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"strconv"

	"github.com/kvgate/kvgate/proxy"
)

//go:embed static
var staticFS embed.FS

// Source is what the admin pages read: *proxy.Proxy implements it.
type Source interface {
	Status() proxy.StatusView
	Picks(n int) []proxy.PickRecord
	ConfigView() (any, error)
	Explain(proxy.ExplainRequest) (*proxy.Explanation, error)
}

var _ Source = (*proxy.Proxy)(nil)

// pagePicks is how many pick decisions the page lists.
const pagePicks = 12

// maxExplainBody bounds POST /debug/explain's body.
const maxExplainBody = 1 << 20

// Handler serves the status page and the /debug endpoints of src. version
// is shown in the page's header.
func Handler(src Source, version string) http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	page := func(w http.ResponseWriter, r *http.Request) {
		st := src.Status()
		d := pageData{Status: st, Picks: src.Picks(pagePicks), Version: version}
		var buf bytes.Buffer
		name := "page"
		if r.URL.Query().Get("partial") == "1" {
			name = "main" // the live refresh swaps <main> only
		}
		if err := pageTmpl.ExecuteTemplate(&buf, name, &d); err != nil {
			jsonError(w, http.StatusInternalServerError, "render the status page: "+err.Error())
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_, _ = w.Write(buf.Bytes())
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /ui", page)
	mux.HandleFunc("GET /debug/status", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, src.Status()) })
	mux.HandleFunc("GET /debug/pools", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"pools": src.Status().Pools})
	})
	mux.HandleFunc("GET /debug/routes", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"routes": src.Status().Routes})
	})
	mux.HandleFunc("GET /debug/picks", func(w http.ResponseWriter, r *http.Request) {
		n := 0
		if s := r.URL.Query().Get("n"); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				jsonError(w, http.StatusBadRequest, "n must be a count of decisions, e.g. ?n=10; got "+strconv.Quote(s))
				return
			}
			n = v
		}
		writeJSON(w, map[string]any{"picks": src.Picks(n)})
	})
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, _ *http.Request) {
		c, err := src.ConfigView()
		if err != nil {
			jsonError(w, http.StatusInternalServerError, "encode the running config: "+err.Error())
			return
		}
		writeJSON(w, c)
	})
	mux.HandleFunc("POST /debug/explain", func(w http.ResponseWriter, r *http.Request) {
		var req proxy.ExplainRequest
		dec := json.NewDecoder(io.LimitReader(r.Body, maxExplainBody))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			jsonError(w, http.StatusBadRequest, "the body must be a JSON object like {\"model\": \"M\", \"prompt\": \"TEXT\"} (fields: listener, host, method, path, headers, model, prompt, cacheSalt, body): "+err.Error())
			return
		}
		ex, err := src.Explain(req)
		if errors.Is(err, proxy.ErrExplain) {
			jsonError(w, http.StatusUnprocessableEntity, err.Error())
			return
		}
		if err != nil {
			jsonError(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, ex)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		jsonError(w, http.StatusNotFound, "no admin page at "+r.Method+" "+r.URL.Path+"; try GET / (status page), /debug/status, /debug/pools, /debug/routes, /debug/picks, /debug/config, POST /debug/explain, /metrics, /livez, /readyz")
	})
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func jsonError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": status, "message": msg}})
}
