package server

import (
	"errors"
	"fmt"
	"net/http"
)

// Kinds of refusal of a server method. Errors the methods return wrap
// exactly one of them (test with errors.Is); their text is one line that
// says what went wrong and what to do. The HTTP layer maps each kind to
// its status (statusOf).
var (
	ErrNotFound     = errors.New("not found")
	ErrForbidden    = errors.New("forbidden")
	ErrInvalidState = errors.New("invalid state for this action")
	ErrInvalid      = errors.New("invalid request")
	ErrLimit        = errors.New("limit reached")
	// ErrStore: the change could not be committed, so nothing changed.
	ErrStore = errors.New("store refused the change")
)

// ErrConflict is ErrInvalidState under the name of its HTTP status.
var ErrConflict = ErrInvalidState

// kindError is a refusal of one kind with its own message.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func refusal(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

func notFound(format string, args ...any) error  { return refusal(ErrNotFound, format, args...) }
func forbidden(format string, args ...any) error { return refusal(ErrForbidden, format, args...) }
func badState(format string, args ...any) error  { return refusal(ErrInvalidState, format, args...) }

// storeFailed wraps a failed commit: the caller learns that nothing
// changed and that retrying later may work.
func storeFailed(err error) error {
	return &kindError{kind: ErrStore, msg: fmt.Sprintf("the server could not store the change, so nothing changed (%v); try again later", err)}
}

// statusOf maps a server error to its HTTP status.
func statusOf(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.status
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrInvalidState):
		return http.StatusConflict
	case errors.Is(err, ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, ErrLimit):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrStore):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
