package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
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
	var cred *unix.Ucred
	if lc, ok := c.(*limitedConn); ok {
		cred = lc.cred // read once, when Listen's listener accepted it
	} else {
		cred = peerCred(c)
	}
	if cred == nil {
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
	mux.HandleFunc("POST "+api.RouteJobCancel, s.jobAction(func(r *http.Request, c Caller, id uint64) (api.Job, error) {
		return s.CancelJob(r.Context(), c, id)
	}))
	mux.HandleFunc("POST "+api.RouteJobHold, s.jobAction(func(_ *http.Request, c Caller, id uint64) (api.Job, error) {
		return s.HoldJob(c, id)
	}))
	mux.HandleFunc("POST "+api.RouteJobRelease, s.jobAction(func(_ *http.Request, c Caller, id uint64) (api.Job, error) {
		return s.ReleaseJob(c, id)
	}))
	mux.HandleFunc("POST "+api.RouteJobRequeue, s.jobAction(func(_ *http.Request, c Caller, id uint64) (api.Job, error) {
		return s.RequeueJob(c, id)
	}))
	mux.HandleFunc("POST "+api.RouteJobActions, s.handleActions)
	mux.HandleFunc("GET "+api.RouteNodes, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.apiNodes())
	})
	mux.HandleFunc("POST "+api.RouteNodeDrain, s.handleDrain)
	mux.HandleFunc("POST "+api.RouteNodeResume, s.handleResume)
	mux.HandleFunc("GET "+api.RouteHistory, s.handleHistory)
	mux.HandleFunc("GET "+api.RouteUsage, s.handleUsage)
	mux.HandleFunc("GET "+api.RoutePriority, s.handlePriority)
	mux.HandleFunc("DELETE "+api.RouteNodeRemove, s.handleRemoveNode) // agenthttp.go
	mux.HandleFunc("POST "+api.RouteToken, s.handleToken)
	if s.cfg.Pprof {
		mux.Handle("GET "+pprofPrefix, s.pprofHandler()) // pprof.go
	}
	// A known path with another method is a 405 naming the allowed ones,
	// not a 404.
	for path, allow := range map[string]string{
		api.RouteHealth: "GET", api.RouteJobs: "GET, POST", api.RouteJob: "GET", api.RouteJobWait: "GET",
		api.RouteJobCancel: "POST", api.RouteJobHold: "POST", api.RouteJobRelease: "POST", api.RouteJobRequeue: "POST",
		api.RouteNodes: "GET", api.RouteNodeDrain: "POST", api.RouteNodeResume: "POST",
		api.RouteHistory: "GET", api.RouteUsage: "GET", api.RoutePriority: "GET",
		api.RouteNodeRemove: "DELETE", api.RouteToken: "POST",
		api.RouteJobActions: "POST",
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
		re = refuse(statusOf(err), "%v", err)
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
	var wantArray uint64
	if a := q.Get("array"); a != "" {
		var err error
		if wantArray, err = strconv.ParseUint(a, 10, 64); err != nil {
			writeError(w, refuse(http.StatusBadRequest, "array %q is not a job id", a))
			return
		}
	}
	admin := s.isAdmin(c.UID)
	if _, err := lookupIdentity(c.UID); err != nil && !admin {
		writeError(w, refuse(http.StatusForbidden, "%v", err))
		return
	}
	if wantArray != 0 {
		writeJSON(w, http.StatusOK, s.arrayView(wantArray, c))
		return
	}
	states := map[api.JobState]bool{}
	for _, st := range strings.Split(q.Get("state"), ",") {
		if st = strings.ToUpper(strings.TrimSpace(st)); st != "" {
			states[api.JobState(st)] = true
		}
	}
	if q.Get("view") == api.ViewCounts {
		s.writeCounts(w, wantUser, states) // counts.go
		return
	}
	brief := q.Get("view") == api.ViewBrief
	match := func(j *job) bool {
		return (wantUser == "" || j.User == wantUser) && (len(states) == 0 || states[j.State])
	}
	s.mu.Lock()
	var ids []uint64
	for _, j := range s.jobs {
		if match(j) {
			ids = append(ids, j.ID)
		}
	}
	s.mu.Unlock()
	slices.Sort(ids)
	if brief {
		s.writeBriefJSON(w, ids, match) // listjson.go
		return
	}
	writeJobsJSON(w, s.listedJobs(ids, match, func(j *job) api.Job {
		aj := j.apiJob()
		aj.History = nil // list stays small; `show` has the history
		if !admin && j.UID != c.UID {
			aj = redact(aj)
		}
		return aj
	}))
}

// ownJob finds job {id} and checks that the caller may see it; s.mu is
// held on success.
func (s *Server) ownJob(r *http.Request) (*job, error) {
	id, err := jobID(r)
	if err != nil {
		return nil, err
	}
	c := callerOf(r)
	s.mu.Lock()
	j, ok := s.jobs[id]
	if !ok {
		s.mu.Unlock()
		if j, err = s.archivedStub(id); err != nil {
			return nil, err
		}
		s.mu.Lock()
	}
	if j.UID != c.UID && !s.isAdmin(c.UID) {
		s.mu.Unlock()
		return nil, refuse(http.StatusForbidden, "belongs to another user (%s): you can change only your own jobs", j.User)
	}
	return j, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request) {
	aj, err := s.visibleJob(r)
	if err != nil {
		writeError(w, err)
		return
	}
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

// jobID is the {id} of the request's path.
func jobID(r *http.Request) (uint64, error) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		return 0, refuse(http.StatusBadRequest, "job id %q is not a number", r.PathValue("id"))
	}
	return id, nil
}

// jobAction serves one of the POST actions on a job.
func (s *Server) jobAction(act func(r *http.Request, c Caller, id uint64) (api.Job, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := jobID(r)
		if err != nil {
			writeError(w, err)
			return
		}
		aj, err := act(r, callerOf(r), id)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, aj)
	}
}

// waitTerminal blocks until job id is terminal, ctx ends or d passes.
func (s *Server) waitTerminal(ctx context.Context, id uint64, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		s.mu.Lock()
		j, live := s.jobs[id]
		done := !live || api.Terminal(j.State) // not live: archived, so ended
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
	writeJSON(w, http.StatusOK, s.apiJob(id))
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(callerOf(r).UID) {
		// Before reading the body: a non-admin learns nothing more.
		writeError(w, forbidden("only admins may drain nodes"))
		return
	}
	var req api.DrainRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, err)
		return
	}
	var n api.Node
	var err error
	if req.GPU != nil { // gpudrain.go
		n, err = s.DrainGPU(callerOf(r), r.PathValue("name"), *req.GPU, req.Reason)
	} else {
		n, err = s.DrainNode(callerOf(r), r.PathValue("name"), req.Reason, req.Requeue)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) handleResume(w http.ResponseWriter, r *http.Request) {
	if !s.isAdmin(callerOf(r).UID) {
		// Before reading the body: a non-admin learns nothing more.
		writeError(w, forbidden("only admins may resume nodes"))
		return
	}
	var req api.ResumeRequest
	if r.ContentLength != 0 { // the body is optional
		if err := decodeBody(r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	var n api.Node
	var err error
	if req.GPU != nil { // gpudrain.go
		n, err = s.ResumeGPU(callerOf(r), r.PathValue("name"), *req.GPU)
	} else {
		n, err = s.ResumeNode(callerOf(r), r.PathValue("name"))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}
