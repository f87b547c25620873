package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// WaitPoll is how long one GET of RouteJobWait asks the server to hold the
// request open; Client.Wait repeats it until the job is terminal.
const WaitPoll = 30 * time.Second

// maxErrorBody bounds how much of a non-JSON error answer is quoted back,
// so a misbehaving proxy cannot flood the terminal.
const maxErrorBody = 512

// ResolveAddr picks the server address the way every client does: the
// explicit flag value, else $HPC_ADDR, else the socket `hpcd dev` listens on.
func ResolveAddr(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv(EnvAddr); env != "" {
		return env
	}
	return "unix://" + ClientSocketPath()
}

// Client speaks the /v1 API to one hpcd. It is safe for concurrent use.
// Deadlines come from the context of each call: the client itself never
// times out, because Wait legitimately holds a request open for WaitPoll.
type Client struct {
	addr  string // as the user wrote it, for messages
	base  string // scheme://host prefix of every request URL
	http  *http.Client
	token string // sent over HTTPS (credentials.go)
}

// NewClient returns a client for addr: unix:///path/to.sock (HTTP over a
// Unix socket; the server identifies the caller by SO_PEERCRED, so no
// credential is sent), a bare absolute socket path, http://host:port or
// https://host:port.
func NewClient(addr string) (*Client, error) {
	bad := func(why string) error {
		return fmt.Errorf("invalid address %q: %s (want unix:///path/to.sock, http://host:port or https://host:port)", addr, why)
	}
	var sock string
	switch {
	case strings.HasPrefix(addr, "unix://"):
		sock = strings.TrimPrefix(addr, "unix://")
	case strings.HasPrefix(addr, "unix:"):
		sock = strings.TrimPrefix(addr, "unix:")
	case strings.HasPrefix(addr, "/"):
		sock = addr
	}
	if sock != "" || strings.HasPrefix(addr, "unix:") {
		if !strings.HasPrefix(sock, "/") {
			return nil, bad("the socket path must be absolute")
		}
		tr := &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				if err := CheckSocketPath(sock); err != nil && !errors.Is(err, os.ErrNotExist) {
					return nil, fmt.Errorf("refusing to talk to %s: %w", sock, err)
				}
				var d net.Dialer
				return d.DialContext(ctx, "unix", sock)
			},
			MaxIdleConns:    4,
			IdleConnTimeout: 90 * time.Second,
		}
		// The host part is never resolved: every connection goes to sock.
		return &Client{addr: addr, base: "http://hpcd", http: &http.Client{Transport: tr}}, nil
	}

	u, err := url.Parse(addr)
	if err != nil {
		return nil, bad(err.Error())
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, bad("unknown scheme")
	}
	if u.Host == "" {
		return nil, bad("no host")
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		// The client sends the user's whole environment: never in clear
		// over a network.
		return nil, bad("plain http only to a loopback address; use https")
	}
	if u.Path != "" && u.Path != "/" {
		return nil, bad("no path is allowed after host:port")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var token string
	if u.Scheme == "https" {
		// `hpcsub login` stored the user's token and the cluster CA.
		if tr, token, err = httpsTransport(); err != nil {
			return nil, err
		}
	}
	return &Client{
		addr:  addr,
		base:  u.Scheme + "://" + u.Host,
		http:  &http.Client{Transport: tr},
		token: token,
	}, nil
}

// Addr returns the address the client was created with.
func (c *Client) Addr() string { return c.addr }

// APIError is a non-2xx answer from the server.
type APIError struct {
	Status      int      // HTTP status code
	Message     string   // one line: what went wrong and what to do
	Diagnostics []string // "file:line:col: message" per HCL problem, if any
}

func (e *APIError) Error() string { return e.Message }

// UnavailableError means no server answered at the address at all: the
// socket is missing, the connection was refused, the host is unreachable.
type UnavailableError struct {
	Addr string
	Err  error // the dial error
}

func (e *UnavailableError) Error() string {
	const hint = "start one with `hpcd dev`, or set " + EnvAddr + " / --addr"
	if errors.Is(e.Err, syscall.ECONNREFUSED) || errors.Is(e.Err, syscall.ENOENT) {
		return fmt.Sprintf("no hpcd is running at %s: %s", e.Addr, hint)
	}
	return fmt.Sprintf("cannot reach hpcd at %s (%s): %s", e.Addr, dialCause(e.Err), hint)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// dialCause strips the "dial unix /path:" prefixes that repeat the address.
func dialCause(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var sc *os.SyscallError
	if errors.As(err, &sc) && sc.Err != nil {
		err = sc.Err
	}
	return err.Error()
}

// Submit sends a job file; the server parses and validates it again.
func (c *Client) Submit(ctx context.Context, req SubmitRequest) (SubmitResponse, error) {
	var resp SubmitResponse
	err := c.do(ctx, http.MethodPost, RouteJobs, nil, req, &resp)
	return resp, err
}

// Jobs lists the jobs the caller may see; user and state filter when set.
func (c *Client) Jobs(ctx context.Context, user, state string) ([]Job, error) {
	q := url.Values{}
	if user != "" {
		q.Set("user", user)
	}
	if state != "" {
		q.Set("state", state)
	}
	var jobs []Job
	err := c.do(ctx, http.MethodGet, RouteJobs, q, nil, &jobs)
	return jobs, err
}

// Job returns one job.
func (c *Client) Job(ctx context.Context, id uint64) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodGet, jobRoute(RouteJob, id), nil, nil, &j)
	return j, err
}

// Wait blocks until job id is terminal and returns it. It long-polls
// RouteJobWait, one WaitPoll at a time, so it survives proxies that cut
// idle requests; cancel ctx to stop waiting (the job keeps running).
func (c *Client) Wait(ctx context.Context, id uint64) (Job, error) {
	q := url.Values{"timeout": {WaitPoll.String()}}
	for {
		start := time.Now()
		var j Job
		if err := c.do(ctx, http.MethodGet, jobRoute(RouteJobWait, id), q, nil, &j); err != nil {
			return Job{}, err
		}
		if Terminal(j.State) {
			return j, nil
		}
		// A server that answers early with a live job (a state change, a
		// restart) must not turn this loop into a busy spin.
		if time.Since(start) < time.Second {
			select {
			case <-ctx.Done():
				return Job{}, ctx.Err()
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
}

// Cancel ends a job: a pending one never starts, a running one is killed.
func (c *Client) Cancel(ctx context.Context, id uint64) (Job, error) {
	return c.jobAction(ctx, RouteJobCancel, id)
}

// Hold keeps a pending job from being scheduled until Release.
func (c *Client) Hold(ctx context.Context, id uint64) (Job, error) {
	return c.jobAction(ctx, RouteJobHold, id)
}

// Release makes a held job pending again.
func (c *Client) Release(ctx context.Context, id uint64) (Job, error) {
	return c.jobAction(ctx, RouteJobRelease, id)
}

// Requeue stops a running job and queues it again, using one of its restarts.
func (c *Client) Requeue(ctx context.Context, id uint64) (Job, error) {
	return c.jobAction(ctx, RouteJobRequeue, id)
}

func (c *Client) jobAction(ctx context.Context, route string, id uint64) (Job, error) {
	var j Job
	err := c.do(ctx, http.MethodPost, jobRoute(route, id), nil, nil, &j)
	return j, err
}

// Nodes lists the cluster's nodes.
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	var nodes []Node
	err := c.do(ctx, http.MethodGet, RouteNodes, nil, nil, &nodes)
	return nodes, err
}

// Drain stops new work on a node (admin only). The returned node is zero
// if the server answered without a body.
func (c *Client) Drain(ctx context.Context, name string, req DrainRequest) (Node, error) {
	var n Node
	err := c.do(ctx, http.MethodPost, nodeRoute(RouteNodeDrain, name), nil, req, &n)
	return n, err
}

// Resume returns a drained or draining node to service (admin only).
func (c *Client) Resume(ctx context.Context, name string) (Node, error) {
	var n Node
	err := c.do(ctx, http.MethodPost, nodeRoute(RouteNodeResume, name), nil, nil, &n)
	return n, err
}

// Health reports whether the server answers and says it is healthy.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, RouteHealth, nil, nil, nil)
}

func jobRoute(route string, id uint64) string {
	return strings.Replace(route, "{id}", strconv.FormatUint(id, 10), 1)
}

func nodeRoute(route, name string) string {
	return strings.Replace(route, "{name}", url.PathEscape(name), 1)
}

// do sends one request and decodes a 2xx JSON answer into out (if out is
// non-nil and the body is non-empty) or a non-2xx answer into *APIError.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("%s %s: %w", method, path, ctxErr)
		}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return &UnavailableError{Addr: c.addr, Err: err}
		}
		if hint := tlsHint(err); hint != "" { // credentials.go
			return fmt.Errorf("%s %s at %s: %s: %w", method, path, c.addr, hint, err)
		}
		return fmt.Errorf("%s %s at %s: %w", method, path, c.addr, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp.StatusCode, raw)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// decodeError turns a non-2xx answer into *APIError, keeping the server's
// message when the body is an api.Error and a bounded excerpt otherwise.
func decodeError(status int, raw []byte) *APIError {
	e := &APIError{Status: status}
	var body Error
	if json.Unmarshal(raw, &body) == nil && body.Error != "" {
		e.Message = body.Error
		e.Diagnostics = body.Diagnostics
		return e
	}
	text := strings.TrimSpace(string(raw))
	if len(text) > maxErrorBody {
		text = text[:maxErrorBody] + "..."
	}
	if i := strings.IndexByte(text, '\n'); i >= 0 {
		text = text[:i]
	}
	if text == "" {
		text = http.StatusText(status)
	}
	e.Message = fmt.Sprintf("server answered %d: %s", status, text)
	return e
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
