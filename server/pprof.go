package server

import (
	"net/http"
	"net/http/pprof"
	"strings"
)

// pprofPrefix is where an opt-in server (Config.Pprof, `hpcd --pprof`)
// serves the Go runtime's profiles: heap, allocs, goroutine, profile
// (CPU) and the rest of net/http/pprof's index.
const pprofPrefix = "/debug/pprof/"

// pprofHandler serves the runtime profiles to admins on the Unix socket
// only: a profile shows other users' job names, paths and environment
// strings in memory, and a CPU profile costs the daemon time, so neither
// a user nor a token holder over HTTPS may ask for one.
func (s *Server) pprofHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if via, _ := r.Context().Value(viaTokenKey{}).(bool); via {
			writeError(w, forbidden("profiles are served on the server's Unix socket only"))
			return
		}
		if !s.isAdmin(callerOf(r).UID) {
			writeError(w, forbidden("only admins may read the server's profiles"))
			return
		}
		switch name := strings.TrimPrefix(r.URL.Path, pprofPrefix); name {
		case "":
			pprof.Index(w, r)
		case "cmdline":
			pprof.Cmdline(w, r)
		case "profile":
			pprof.Profile(w, r)
		case "symbol":
			pprof.Symbol(w, r)
		case "trace":
			pprof.Trace(w, r)
		default:
			pprof.Handler(name).ServeHTTP(w, r)
		}
	})
}
