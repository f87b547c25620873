package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/hpc-sched/hpc/api"
)

const maxBodyBytes = 4 << 20

type callerKey struct{}

// ConnContext records the peer credentials of a Unix-socket connection in
// its context: the kernel vouches for the uid, so no password or token is
// needed locally. Connections of any other kind carry no caller and every
// request on them is refused.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	var cred *unix.Ucred
	var credErr error
	if err := raw.Control(func(fd uintptr) {
		cred, credErr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || credErr != nil {
		return ctx
	}
	return context.WithValue(ctx, callerKey{}, Caller{UID: cred.Uid, GID: cred.Gid})
}

// Handler serves the /v1 API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+api.RouteHealth, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	})
	mux.HandleFunc("POST "+api.RouteJobs, s.handleSubmit)
	mux.HandleFunc("GET "+api.RouteJobs, s.handleList)
	mux.HandleFunc("GET "+api.RouteJob, s.handleGet)
	mux.HandleFunc("GET "+api.RouteJobWait, s.handleWait)
	mux.HandleFunc("POST "+api.RouteJobCancel, s.handleCancel)
	mux.HandleFunc("POST "+api.RouteJobHold, s.handleHold)
	mux.HandleFunc("POST "+api.RouteJobRelease, s.handleRelease)
	mux.HandleFunc("GET "+api.RouteNodes, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.apiNodes())
	})
	mux.HandleFunc("POST "+api.RouteNodeDrain, s.handleDrain)
	mux.HandleFunc("POST "+api.RouteNodeResume, s.handleResume)
	// A known path with another method is a 405 naming the allowed ones,
	// not a 404.
	for path, allow := range map[string]string{
		api.RouteHealth: "GET", api.RouteJobs: "GET, POST", api.RouteJob: "GET", api.RouteJobWait: "GET",
		api.RouteJobCancel: "POST", api.RouteJobHold: "POST", api.RouteJobRelease: "POST",
		api.RouteNodes: "GET", api.RouteNodeDrain: "POST", api.RouteNodeResume: "POST",
	} {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, refuse(http.StatusMethodNotAllowed, "%s %s: method not allowed here, use %s", r.Method, r.URL.Path, allow))
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, refuse(http.StatusNotFound, "no such endpoint %s %s: see docs/api.md", r.Method, r.URL.Path))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := r.Context().Value(callerKey{}).(Caller); !ok {
			writeError(w, refuse(http.StatusUnauthorized, "unauthenticated connection: use the server's Unix socket"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		mux.ServeHTTP(w, r)
	})
}

func callerOf(r *http.Request) Caller {
	c, _ := r.Context().Value(callerKey{}).(Caller)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var re *requestError
	if !errors.As(err, &re) {
		re = refuse(http.StatusInternalServerError, "%v", err)
	}
	writeJSON(w, re.status, api.Error{Error: re.msg, Diagnostics: re.diags})
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBodyBytes)
		}
		return refuse(http.StatusBadRequest, "malformed JSON body: %v", err)
	}
	// One object and nothing after it: trailing data is a malformed body.
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return refuse(http.StatusRequestEntityTooLarge, "request body over %d bytes", maxBodyBytes)
		}
		return refuse(http.StatusBadRequest, "malformed JSON body: unexpected data after the JSON object")
	}
	return nil
}

func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	var req api.SubmitRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.Submit(callerOf(r), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) handleList(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	wantUser := q.Get("user")
	admin := s.isAdmin(c.UID)
	self, err := lookupIdentity(c.UID)
	if err != nil && !admin {
		writeError(w, refuse(http.StatusForbidden, "%v", err))
		return
	}
	if wantUser != "" && wantUser != self.name && !admin {
		writeError(w, refuse(http.StatusForbidden, "only admins may list other users' jobs"))
		return
	}
	states := map[string]bool{}
	for _, st := range strings.Split(q.Get("state"), ",") {
		if st = strings.ToUpper(strings.TrimSpace(st)); st != "" {
			states[st] = true
		}
	}
	s.mu.Lock()
	out := make([]api.Job, 0)
	for _, j := range s.jobs {
		if !admin && j.UID != c.UID {
			continue
		}
		if wantUser != "" && j.User != wantUser {
			continue
		}
		if len(states) > 0 && !states[j.State] {
			continue
		}
		aj := j.apiJob()
		aj.History = nil // list stays small; `show` has the history
		out = append(out, aj)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, k int) bool { return out[i].ID < out[k].ID })
	writeJSON(w, http.StatusOK, out)
}

// ownJob finds job {id} and checks that the caller may see it; s.mu is
// held on success.
func (s *Server) ownJob(r *http.Request) (*job, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return nil, refuse(http.StatusBadRequest, "job id %q is not a number", r.PathValue("id"))
	}
	c := callerOf(r)
	s.mu.Lock()
	j, ok := s.jobs[id]
	if !ok {
		s.mu.Unlock()
		return nil, refuse(http.StatusNotFound, "no job %d", id)
	}
	if j.UID != c.UID && !s.isAdmin(c.UID) {
		s.mu.Unlock()
		return nil, refuse(http.StatusForbidden, "job %d belongs to another user", id)
	}
	return j, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	j, err := s.ownJob(r)
	if err != nil {
		writeError(w, err)
		return
	}
	aj := j.apiJob()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, aj)
}

// handleWait long-polls until the job is terminal or the timeout passes,
// then answers with the job as it is.
func (s *Server) handleWait(w http.ResponseWriter, r *http.Request) {
	timeout := 30 * time.Second
	if t := r.URL.Query().Get("timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil || d < 0 || d > 5*time.Minute {
			writeError(w, refuse(http.StatusBadRequest, "timeout must be a duration up to 5m"))
			return
		}
		timeout = d
	}
	j, err := s.ownJob(r)
	if err != nil {
		writeError(w, err)
		return
	}
	id := j.ID
	s.mu.Unlock()
	s.waitTerminal(r.Context(), id, timeout)
	if r.Context().Err() != nil {
		return // the client went away
	}
	s.respondJob(w, id)
}

func (s *Server) handleCancel(w http.ResponseWriter, r *http.Request) {
	j, err := s.ownJob(r)
	if err != nil {
		writeError(w, err)
		return
	}
	id, now := j.ID, time.Now()
	var agents []Agent
	switch {
	case api.Terminal(j.State):
		st := j.State
		s.mu.Unlock()
		writeError(w, refuse(http.StatusConflict, "job %d already ended (%s)", id, st))
		return
	case j.State == api.StateRunning:
		j.CancelRequested = true
		for _, a := range j.Alloc {
			if ag := s.agents[a.Node]; ag != nil {
				agents = append(agents, ag)
			}
		}
	default:
		j.CancelRequested = true
		j.to(api.StateCancelled, fmt.Sprintf("cancelled by uid %d", callerOf(r).UID), now)
	}
	s.notifyLocked()
	s.mu.Unlock()
	// Durable first: a cancel acknowledged before a crash is re-sent on restart.
	if err := s.persist(id); err != nil {
		writeError(w, err)
		return
	}
	for _, a := range agents {
		if err := a.Cancel(id, "cancelled by user"); err != nil {
			s.log.Warn("cancel on agent", "job", id, "err", err)
		}
	}
	if len(agents) > 0 {
		// Answer with the end state, as users expect from a cancel, unless
		// the kill takes long; the cancel is durable either way.
		s.waitTerminal(r.Context(), id, 5*time.Second)
	}
	s.respondJob(w, id)
}

// waitTerminal blocks until job id is terminal, ctx ends or d passes.
func (s *Server) waitTerminal(ctx context.Context, id uint64, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		done := api.Terminal(s.jobs[id].State)
		changed := s.changed
		s.mu.Unlock()
		if done {
			return
		}
		select {
		case <-changed:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (s *Server) respondJob(w http.ResponseWriter, id uint64) {
	s.mu.Lock()
	aj := s.jobs[id].apiJob()
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, aj)
}

func (s *Server) handleHold(w http.ResponseWriter, r *http.Request) {
	s.moveJob(w, r, api.StatePending, api.StateHeld, "held by user")
}

func (s *Server) handleRelease(w http.ResponseWriter, r *http.Request) {
	s.moveJob(w, r, api.StateHeld, api.StatePending, "released by user")
}

func (s *Server) moveJob(w http.ResponseWriter, r *http.Request, from, to, reason string) {
	j, err := s.ownJob(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if j.State != from {
		id, st := j.ID, j.State
		s.mu.Unlock()
		writeError(w, refuse(http.StatusConflict, "job %d is %s, not %s", id, st, from))
		return
	}
	j.to(to, reason, time.Now())
	id := j.ID
	s.notifyLocked()
	s.mu.Unlock()
	if err := s.persist(id); err != nil {
		writeError(w, err)
		return
	}
	s.Kick()
	s.respondJob(w, id)
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(callerOf(r).UID) {
		writeError(w, refuse(http.StatusForbidden, "only admins may drain nodes"))
		return
	}
	var req api.DrainRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if strings.TrimSpace(req.Reason) == "" || len(req.Reason) > 1024 {
		writeError(w, refuse(http.StatusBadRequest, "a drain needs a reason of 1..1024 characters (--reason)"))
		return
	}
	if status, err := s.setDrain(r.PathValue("name"), true, req.Reason, req.Requeue); err != nil {
		writeError(w, refuse(status, "%v", err))
		return
	}
	s.respondNode(w, r.PathValue("name"))
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(callerOf(r).UID) {
		writeError(w, refuse(http.StatusForbidden, "only admins may resume nodes"))
		return
	}
	if status, err := s.setDrain(r.PathValue("name"), false, "", false); err != nil {
		writeError(w, refuse(status, "%v", err))
		return
	}
	s.respondNode(w, r.PathValue("name"))
}

func (s *Server) respondNode(w http.ResponseWriter, name string) {
	for _, n := range s.apiNodes() {
		if n.Name == name {
			writeJSON(w, http.StatusOK, n)
			return
		}
	}
	writeError(w, refuse(http.StatusNotFound, "no node named %q", name))
}
