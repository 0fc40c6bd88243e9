package payloom

import (
	"encoding/json"
	"time"
)

// EventType names what happened.
type EventType string

const (
	EventPaymentCreated    EventType = "payment.created"
	EventPaymentAuthorized EventType = "payment.authorized"
	EventPaymentCaptured   EventType = "payment.captured"
	EventPaymentFailed     EventType = "payment.failed"
	EventPaymentCanceled   EventType = "payment.canceled"
	EventPaymentExpired    EventType = "payment.expired" // not paid before its expires_at
	EventRefundCreated     EventType = "refund.created"
	EventRefundSucceeded   EventType = "refund.succeeded"
	EventRefundFailed      EventType = "refund.failed"
)

// Events of the watch for late authorizations (payloom.LateCheck). An
// attempt recorded failed after an unknown outcome turned out authorized at
// the processor, and Payloom reversed it there: voided it
// (EventPaymentAttemptVoided; the attempt is voided_late), or refunded it
// because the processor had captured it (EventPaymentAttemptRefunded;
// refunded_late). The payment's own status does not change; the event
// carries it with that attempt.
const (
	EventPaymentAttemptVoided   EventType = "payment.attempt_voided"
	EventPaymentAttemptRefunded EventType = "payment.attempt_refunded"
)

// EventTypes lists every event type.
var EventTypes = []EventType{
	EventPaymentCreated, EventPaymentAuthorized, EventPaymentCaptured, EventPaymentFailed,
	EventPaymentCanceled, EventPaymentExpired, EventPaymentAttemptVoided, EventPaymentAttemptRefunded,
	EventRefundCreated, EventRefundSucceeded, EventRefundFailed, EventWebhookEndpointDisabled,
}

// Event records one change, with a snapshot of the object at that moment.
// It is written in the same transaction as the change it describes, so the
// events table is the outbox webhooks are delivered from.
type Event struct {
	ID         string    `json:"id"`
	Object     string    `json:"object"` // "event"
	MerchantID string    `json:"merchant_id"`
	Livemode   bool      `json:"livemode"`
	Type       EventType `json:"type"`
	Data       EventData `json:"data"`
	CreatedAt  time.Time `json:"created_at"`
	// ObjectID is the ID of the object in Data (for filtering).
	ObjectID string `json:"-"`
}

// EventData holds the object snapshot as JSON (a payment or a refund).
type EventData struct {
	Object json.RawMessage `json:"object"`
}

// NewEvent builds an event with a fresh ID and a JSON snapshot of obj.
func NewEvent(scope Scope, typ EventType, objectID string, obj any, now time.Time) (*Event, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	return &Event{
		ID: NewID(PrefixEvent), Object: "event", MerchantID: scope.MerchantID,
		Livemode: scope.Livemode, Type: typ, Data: EventData{Object: b},
		CreatedAt: now, ObjectID: objectID,
	}, nil
}

// NewEvents returns one event of each type about the same change, sharing
// one snapshot of obj (encoded once).
func NewEvents(scope Scope, types []EventType, objectID string, obj any, now time.Time) ([]*Event, error) {
	if len(types) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	evs := make([]*Event, len(types))
	for i, typ := range types {
		evs[i] = &Event{
			ID: NewID(PrefixEvent), Object: "event", MerchantID: scope.MerchantID,
			Livemode: scope.Livemode, Type: typ, Data: EventData{Object: b},
			CreatedAt: now, ObjectID: objectID,
		}
	}
	return evs, nil
}

// EventFilter filters ListEvents.
type EventFilter struct {
	ListParams
	Type     *EventType
	ObjectID *string
}
