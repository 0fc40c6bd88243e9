package payloom

import (
	"errors"
	"fmt"
)

// Error codes. Each is a stable string clients may branch on; the API maps
// every code to exactly one HTTP status and error type (see api/errors.go).
const (
	// 400
	CodeValidation             = "validation_error"
	CodeIdempotencyKeyRequired = "idempotency_key_required"
	CodeInvalidJSON            = "invalid_json"
	// 401
	CodeAuthFailed = "auth_failed"
	// 403
	CodePermissionDenied = "permission_denied"
	// 404
	CodeNotFound = "not_found"
	// 409
	CodeInvalidState          = "invalid_state"
	CodeIdempotencyConflict   = "idempotency_conflict"
	CodeIdempotencyInProgress = "idempotency_in_progress"
	CodeAlreadyExists         = "already_exists"
	// CodeTooManyAttempts: the payment has had as many processor
	// attempts as it may (a hosted-page payment confirmed card after
	// card); it takes no more.
	CodeTooManyAttempts = "too_many_attempts"
	// CodeConflict means a concurrent writer changed the row first (a stale
	// Version). The engine retries it; it should not reach a client.
	CodeConflict = "conflict"
	// 413, 415
	CodeRequestTooLarge      = "request_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	// 500, 503
	CodeInternal    = "internal_error"
	CodeUnavailable = "service_unavailable"
)

// Error is Payloom's application error: a code, a message that is safe to
// show to the API client, and for validation errors the offending parameter
// in the API's bracket notation ("card[number]", "metadata[plan]").
//
// The wrapped Err is for logs only and must never hold card data.
type Error struct {
	Code    string
	Message string
	Param   string
	Err     error
}

func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Param != "" {
		s += " (param " + e.Param + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a validation error naming the parameter.
func FieldError(param, format string, args ...any) *Error {
	return &Error{Code: CodeValidation, Param: param, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of an application error, "" for nil and
// CodeInternal for any other error.
func ErrorCode(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Code
	default:
		return CodeInternal
	}
}

// ErrorMessage returns the client-safe message of an application error and
// "internal error" for any other error (whose text may hold details a client
// must not see).
func ErrorMessage(err error) string {
	var e *Error
	switch {
	case err == nil:
		return ""
	case errors.As(err, &e):
		return e.Message
	default:
		return "internal error"
	}
}

// ErrorParam returns the Param of an application error, or "".
func ErrorParam(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Param
	}
	return ""
}

// IsCode reports whether err is an application error with the code.
func IsCode(err error, code string) bool { return ErrorCode(err) == code }
