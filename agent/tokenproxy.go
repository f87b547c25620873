package agent

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
)

type peerKey struct{}

// TokenProxy serves POST /v1/token on the agent's local Unix socket: the
// kernel tells the agent the caller's uid (SO_PEERCRED), and the agent,
// which the server trusts through its certificate, asks the server for a
// token for that uid. Users on any node of the cluster can so run
// `hpcsub login` without a password.
func TokenProxy(h *HTTPS, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+api.RouteToken, func(w http.ResponseWriter, r *http.Request) {
		uid, ok := r.Context().Value(peerKey{}).(uint32)
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(api.Error{Error: "no peer credentials on this connection"})
			return
		}
		resp, err := h.Token(r.Context(), uid)
		if err != nil {
			log.Warn("token for a local user", "uid", uid, "err", err)
			w.WriteHeader(http.StatusBadGateway)
			json.NewEncoder(w).Encode(api.Error{Error: "the server did not issue a token: " + err.Error()})
			return
		}
		json.NewEncoder(w).Encode(resp)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.Error{Error: "an agent's socket serves only POST " + api.RouteToken + " (hpcsub login); use --addr for the server"})
	})
	return &http.Server{Handler: mux, ConnContext: func(ctx context.Context, c net.Conn) context.Context {
		uc, ok := c.(*net.UnixConn)
		if !ok {
			return ctx
		}
		raw, err := uc.SyscallConn()
		if err != nil {
			return ctx
		}
		var cred *unix.Ucred
		var cerr error
		if raw.Control(func(fd uintptr) { cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) }) != nil || cerr != nil {
			return ctx
		}
		return context.WithValue(ctx, peerKey{}, cred.Uid)
	}}
}
