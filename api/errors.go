package api

import (
	"errors"
	"net/http"

	"github.com/payloom/payloom"
)

// Error types, the coarse class of an error a client branches on first.
const (
	typeInvalidRequest = "invalid_request_error"
	typeAuthentication = "authentication_error"
	typeIdempotency    = "idempotency_error"
	typeAPI            = "api_error"
)

// codeMethodNotAllowed is the code of a 405. It is an API-level code (no
// service returns it), so it lives here rather than in the root package.
const codeMethodNotAllowed = "method_not_allowed"

// errorClass is what one error code means over HTTP.
type errorClass struct {
	Status int
	Type   string
}

// errorTable maps every error code a client may see to exactly one HTTP
// status and error type. A code that is not here (internal_error, the
// store's conflict, anything unexpected) is a bug and answers 500 api_error
// "internal error" with the real error logged, never shown.
var errorTable = map[string]errorClass{
	payloom.CodeValidation:             {http.StatusBadRequest, typeInvalidRequest},
	payloom.CodeInvalidJSON:            {http.StatusBadRequest, typeInvalidRequest},
	payloom.CodeIdempotencyKeyRequired: {http.StatusBadRequest, typeInvalidRequest},
	payloom.CodeAuthFailed:             {http.StatusUnauthorized, typeAuthentication},
	payloom.CodePermissionDenied:       {http.StatusForbidden, typeInvalidRequest},
	payloom.CodeNotFound:               {http.StatusNotFound, typeInvalidRequest},
	codeMethodNotAllowed:               {http.StatusMethodNotAllowed, typeInvalidRequest},
	payloom.CodeInvalidState:           {http.StatusConflict, typeInvalidRequest},
	payloom.CodeAlreadyExists:          {http.StatusConflict, typeInvalidRequest},
	payloom.CodeTooManyAttempts:        {http.StatusConflict, typeInvalidRequest},
	payloom.CodeIdempotencyConflict:    {http.StatusConflict, typeIdempotency},
	payloom.CodeIdempotencyInProgress:  {http.StatusConflict, typeIdempotency},
	payloom.CodeRequestTooLarge:        {http.StatusRequestEntityTooLarge, typeInvalidRequest},
	payloom.CodeUnsupportedMediaType:   {http.StatusUnsupportedMediaType, typeInvalidRequest},
	payloom.CodeUnavailable:            {http.StatusServiceUnavailable, typeAPI},
}

// errorBody is the JSON shape of every error response.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type      string `json:"type"`
	Code      string `json:"code"`
	Message   string `json:"message"`
	Param     string `json:"param,omitempty"`
	RequestID string `json:"request_id"`
}

// classify returns the HTTP status and body of an error. internal reports
// whether err is a bug to be logged: its text is not shown.
func classify(err error, requestID string) (status int, body errorBody, internal bool) {
	var e *payloom.Error
	if errors.As(err, &e) {
		if c, ok := errorTable[e.Code]; ok {
			return c.Status, errorBody{errorDetail{Type: c.Type, Code: e.Code, Message: e.Message,
				Param: e.Param, RequestID: requestID}}, false
		}
	}
	return http.StatusInternalServerError, errorBody{errorDetail{Type: typeAPI, Code: payloom.CodeInternal,
		Message: "internal error", RequestID: requestID}}, true
}
